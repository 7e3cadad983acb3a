package scenario

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

// stepFields are the keys every step may have beside its kind key.
type stepFields struct {
	Name    string        `yaml:"name" doc:"the step's name in progress, logs and errors"`
	Timeout time.Duration `yaml:"timeout" doc:"how long one attempt may take, as a Go duration"`
	Retries int           `yaml:"retries" doc:"how many times a failed attempt is retried, for kinds that allow it"`
}

// maxRetries bounds a step's retries; with backoff capped at 30 s, 100
// retries already take most of an hour.
const maxRetries = 100

var commonKeys = strictyaml.Fields(reflect.TypeOf(stepFields{})).Keys

// decodePhase decodes the steps of one phase.
func decodePhase(d strictyaml.Diags, n *yaml.Node, phase Phase) []*Step {
	n = strictyaml.ResolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		return nil // reported by strictyaml.Decode
	}
	var out []*Step
	names := map[string]*yaml.Node{}
	for i, item := range n.Content {
		s := decodeStep(d, strictyaml.ResolveAlias(item), phase, i)
		if s == nil {
			continue
		}
		if first, dup := names[s.Name]; dup {
			d.Within(s.Label()).At(item, "name %q is already used by the step at line %d", s.Name, first.Line)
		}
		names[s.Name] = item
		out = append(out, s)
	}
	return out
}

// provisionalLabel names a step before it is decoded, as decodeStep will:
// its name or phase[index], and its kind when it has exactly one.
func provisionalLabel(n *yaml.Node, phase Phase, index int) string {
	name := fmt.Sprintf("%s[%d]", phase, index)
	if _, nameNode := strictyaml.FieldNode(n, "name"); nameNode != nil && strictyaml.IsScalar(nameNode) && nameNode.Value != "" {
		name = nameNode.Value
	}
	var kinds []string
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if _, ok := steps.Lookup(n.Content[i].Value); ok {
				kinds = append(kinds, n.Content[i].Value)
			}
		}
	}
	if len(kinds) == 1 {
		return fmt.Sprintf("step %q (%s)", name, kinds[0])
	}
	return fmt.Sprintf("step %q", name)
}

func decodeStep(d strictyaml.Diags, n *yaml.Node, phase Phase, index int) *Step {
	s := &Step{Phase: phase, Index: index, Name: fmt.Sprintf("%s[%d]", phase, index), Pos: strictyaml.PosOf(d.File, n)}
	if n.Kind != yaml.MappingNode {
		d.Within(fmt.Sprintf("step %s", s.Name)).At(n, "a step is a mapping with one kind key (%s), got %s", strings.Join(steps.Names(), ", "), strictyaml.Describe(n))
		return nil
	}
	if _, nameNode := strictyaml.FieldNode(n, "name"); nameNode != nil && strictyaml.IsScalar(nameNode) && nameNode.Value != "" {
		s.Name = nameNode.Value
	}

	// Split the mapping into the common fields and the kind key.
	common := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	var kindKeys, unknown []*yaml.Node
	var specNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		switch _, isKind := steps.Lookup(key.Value); {
		case containsString(commonKeys, key.Value):
			common.Content = append(common.Content, key, val)
		case isKind:
			kindKeys = append(kindKeys, key)
			specNode = val
		default:
			unknown = append(unknown, key)
		}
	}
	label := fmt.Sprintf("step %q", s.Name)
	if len(kindKeys) == 1 {
		label = fmt.Sprintf("step %q (%s)", s.Name, kindKeys[0].Value)
	}
	misspeltKind := false
	for _, key := range unknown {
		d.Within(label).At(key, "%s", strictyaml.UnknownKey(key.Value, append(append([]string{}, commonKeys...), steps.Names()...)))
		misspeltKind = misspeltKind || strictyaml.Suggest(key.Value, steps.Names()) != ""
	}
	switch len(kindKeys) {
	case 0:
		if !misspeltKind { // else the unknown key said which kind it meant
			d.Within(fmt.Sprintf("step %q", s.Name)).At(n, "no kind key; a step needs exactly one of: %s", strings.Join(steps.Names(), ", "))
		}
		return nil
	case 1:
	default:
		names := make([]string, len(kindKeys))
		for i, k := range kindKeys {
			names[i] = k.Value
		}
		d.Within(fmt.Sprintf("step %q", s.Name)).At(kindKeys[1], "more than one kind key (%s); a step has exactly one", strings.Join(names, ", "))
		return nil
	}
	kind, _ := steps.Lookup(kindKeys[0].Value)
	s.Kind = kind.Name
	sd := d.Within(s.Label())

	var f stepFields
	strictyaml.Decode(sd, common, reflect.ValueOf(&f))
	s.Timeout = f.Timeout
	if _, tn := strictyaml.FieldNode(common, "timeout"); tn != nil && f.Timeout <= 0 {
		if _, err := time.ParseDuration(tn.Value); err == nil {
			sd.At(tn, "timeout must be positive")
		}
	}
	s.Retries = f.Retries
	if rk, rn := strictyaml.FieldNode(common, "retries"); rn != nil {
		switch {
		case !kind.Retryable && f.Retries != 0:
			sd.At(rk, "kind %s does not retry; remove retries", kind.Name)
		case f.Retries < 0 || f.Retries > maxRetries:
			sd.At(rn, "retries must be between 0 and %d", maxRetries)
		}
	}

	s.Spec = kind.New()
	s.specNode = decodeSpec(sd, kindKeys[0], specNode, s.Spec)
	s.invalid = s.specNode == nil
	return s
}

// decodeSpec decodes a kind's spec strictly and runs its Validate, placing
// each problem at the field it names. It returns the spec's node, or nil
// when the spec has a problem.
func decodeSpec(d strictyaml.Diags, kindKey, n *yaml.Node, spec steps.Spec) *yaml.Node {
	n = strictyaml.ResolveAlias(n)
	if n.Tag == "!!null" {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: kindKey.Line, Column: kindKey.Column}
	}
	if n.Kind == yaml.MappingNode {
		// A step field written inside the spec is a common slip; say where it goes.
		specKeys := strictyaml.Fields(reflect.TypeOf(spec).Elem())
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			if _, ok := specKeys.ByKey[key.Value]; ok {
				continue
			}
			switch near := strictyaml.Suggest(key.Value, commonKeys); {
			case containsString(commonKeys, key.Value):
				d.At(key, "%q is a step field: write it beside %q, not under it", key.Value, kindKey.Value)
			case near != "" && strictyaml.Suggest(key.Value, specKeys.Keys) == "":
				d.At(key, "unknown key %q (did you mean %q? it is a step field: write it beside %q, not under it); allowed: %s",
					key.Value, near, kindKey.Value, strings.Join(specKeys.Keys, ", "))
			default:
				continue
			}
			n = withoutKey(n, i)
			i -= 2
		}
	}
	before := len(*d.List)
	strictyaml.Decode(d, n, reflect.ValueOf(spec))
	if len(*d.List) > before {
		return nil // Validate would repeat what is already reported
	}
	v, ok := spec.(steps.Validator)
	if !ok {
		return n
	}
	errs := v.Validate()
	reportFields(d, n, errs)
	if len(errs) > 0 {
		return nil
	}
	return n
}

// reportFields reports each problem at the key of the field it names, or
// at the spec when it names none.
func reportFields(d strictyaml.Diags, n *yaml.Node, errs []steps.FieldError) {
	for _, fe := range errs {
		at := n
		if k, _ := strictyaml.FieldNode(n, fe.Field); k != nil {
			at = k
		}
		d.At(at, "%s", fe.Error())
	}
}

// checkSteps runs every step's Check in the order the steps run, so that
// each sees what the steps before it provide (see steps.Check).
func checkSteps(d strictyaml.Diags, sc *Scenario, kind target.Kind) {
	dir := ""
	if sc.File != "" {
		dir = filepath.Dir(sc.File)
	}
	c := steps.NewCheck(context.Background(), dir, kind)
	for _, phase := range sc.Steps {
		for _, s := range phase {
			if s.invalid {
				c.Unchecked(s.Kind)
				continue
			}
			if ck, ok := s.Spec.(steps.Checker); ok {
				reportFields(d.Within(s.Label()), s.specNode, ck.Check(c))
			}
		}
	}
}

func withoutKey(n *yaml.Node, i int) *yaml.Node {
	c := *n
	c.Content = append(append([]*yaml.Node{}, n.Content[:i]...), n.Content[i+2:]...)
	return &c
}

func containsString(list []string, s string) bool {
	i := sort.SearchStrings(list, s)
	return i < len(list) && list[i] == s
}
