package engine

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/steps"
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

var commonKeys = structFields(reflect.TypeOf(stepFields{})).keys

// decodePhase decodes the steps of one phase.
func decodePhase(d diags, n *yaml.Node, phase Phase) []*Step {
	n = resolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		return nil // reported by decodeStrict
	}
	var out []*Step
	names := map[string]*yaml.Node{}
	for i, item := range n.Content {
		s := decodeStep(d, resolveAlias(item), phase, i)
		if s == nil {
			continue
		}
		if first, dup := names[s.Name]; dup {
			d.within(s.Label()).at(item, "name %q is already used by the step at line %d", s.Name, first.Line)
		}
		names[s.Name] = item
		out = append(out, s)
	}
	return out
}

func decodeStep(d diags, n *yaml.Node, phase Phase, index int) *Step {
	s := &Step{Phase: phase, Index: index, Name: fmt.Sprintf("%s[%d]", phase, index), Pos: posOf(d.file, n)}
	if n.Kind != yaml.MappingNode {
		d.within(fmt.Sprintf("step %s", s.Name)).at(n, "a step is a mapping with one kind key (%s), got %s", strings.Join(steps.Names(), ", "), describe(n))
		return nil
	}
	if _, nameNode := fieldNode(n, "name"); nameNode != nil && isScalar(nameNode) && nameNode.Value != "" {
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
	for _, key := range unknown {
		d.within(label).at(key, "%s", unknownKey(key.Value, append(append([]string{}, commonKeys...), steps.Names()...)))
	}
	switch len(kindKeys) {
	case 0:
		d.within(fmt.Sprintf("step %q", s.Name)).at(n, "no kind key; a step needs exactly one of: %s", strings.Join(steps.Names(), ", "))
		return nil
	case 1:
	default:
		names := make([]string, len(kindKeys))
		for i, k := range kindKeys {
			names[i] = k.Value
		}
		d.within(fmt.Sprintf("step %q", s.Name)).at(kindKeys[1], "more than one kind key (%s); a step has exactly one", strings.Join(names, ", "))
		return nil
	}
	kind, _ := steps.Lookup(kindKeys[0].Value)
	s.Kind = kind.Name
	sd := d.within(s.Label())

	var f stepFields
	decodeStrict(sd, common, reflect.ValueOf(&f))
	s.Timeout = f.Timeout
	if _, tn := fieldNode(common, "timeout"); tn != nil && f.Timeout <= 0 {
		if _, err := time.ParseDuration(tn.Value); err == nil {
			sd.at(tn, "timeout must be positive")
		}
	}
	s.Retries = f.Retries
	if rk, rn := fieldNode(common, "retries"); rn != nil {
		switch {
		case !kind.Retryable && f.Retries != 0:
			sd.at(rk, "kind %s does not retry; remove retries", kind.Name)
		case f.Retries < 0 || f.Retries > maxRetries:
			sd.at(rn, "retries must be between 0 and %d", maxRetries)
		}
	}

	s.Spec = kind.New()
	decodeSpec(sd, kindKeys[0], specNode, s.Spec)
	return s
}

// decodeSpec decodes a kind's spec strictly and runs its Validate, placing
// each problem at the field it names.
func decodeSpec(d diags, kindKey, n *yaml.Node, spec steps.Spec) {
	n = resolveAlias(n)
	if n.Tag == "!!null" {
		n = &yaml.Node{Kind: yaml.MappingNode, Line: kindKey.Line, Column: kindKey.Column}
	}
	if n.Kind == yaml.MappingNode {
		// A step field written inside the spec is a common slip; say where it goes.
		specKeys := structFields(reflect.TypeOf(spec).Elem())
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			if _, ok := specKeys.byKey[key.Value]; ok {
				continue
			}
			switch near := suggest(key.Value, commonKeys); {
			case containsString(commonKeys, key.Value):
				d.at(key, "%q is a step field: write it beside %q, not under it", key.Value, kindKey.Value)
			case near != "" && suggest(key.Value, specKeys.keys) == "":
				d.at(key, "unknown key %q (did you mean %q? it is a step field: write it beside %q, not under it); allowed: %s",
					key.Value, near, kindKey.Value, strings.Join(specKeys.keys, ", "))
			default:
				continue
			}
			n = withoutKey(n, i)
			i -= 2
		}
	}
	before := len(*d.list)
	decodeStrict(d, n, reflect.ValueOf(spec))
	if len(*d.list) > before {
		return // Validate would repeat what is already reported
	}
	v, ok := spec.(steps.Validator)
	if !ok {
		return
	}
	for _, fe := range v.Validate() {
		at := n
		if k, _ := fieldNode(n, fe.Field); k != nil {
			at = k
		}
		d.at(at, "%s", fe.Error())
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
