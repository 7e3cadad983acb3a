package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/redact"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/target"

	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/steps"
)

// Phase is one of the five phases of a scenario, in the order they run.
type Phase int

// The phases, in order.
const (
	Setup Phase = iota
	Warmup
	Measure
	Teardown
	Report
)

// Phases lists every phase in the order the engine runs them.
var Phases = []Phase{Setup, Warmup, Measure, Teardown, Report}

var phaseNames = [...]string{"setup", "warmup", "measure", "teardown", "report"}

func (p Phase) String() string { return phaseNames[p] }

// Scenario is a decoded, resolved scenario: variables merged, pace chosen,
// templates rendered and every step's spec decoded.
type Scenario struct {
	File        string
	Name        string
	Description string
	Vars        map[string]any
	PaceSets    map[string]string // name → spec, as written
	Pace        pace.Pace         // the pace this run uses
	Defaults    Defaults
	Thresholds  []results.Threshold
	// MustHold is the target rate at or below which every measured pace
	// step must hold, for runner exec --fail-on-broken; 0 for every step.
	MustHold float64
	Requires []Requirement // what a cluster must hold before setup
	Provides []Check       // in a platform file: what it installs
	Steps    [len(phaseNames)][]*Step

	root *yaml.Node // the document with templates rendered
}

// Resolved returns the scenario with templates rendered, as YAML. It is
// written when a run starts, not when a scenario is validated: yaml.v3's
// encoder holds every event of a document, slow on the largest files.
func (sc *Scenario) Resolved() ([]byte, error) {
	redactURLs(sc.root)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(sc.root); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// Defaults holds scenario-wide settings.
type Defaults struct {
	Timeout         time.Duration `yaml:"timeout" doc:"a step's timeout when it gives none"`
	TeardownTimeout time.Duration `yaml:"teardownTimeout" doc:"the time the whole teardown may take"`
	Pace            string        `yaml:"pace" doc:"the pace set used when --pace is not given"`
}

// Step is one decoded step.
type Step struct {
	Phase   Phase
	Index   int    // position within its phase, from 0
	Name    string // as written, or phase[index] when unnamed
	Kind    string
	Spec    steps.Spec
	Timeout time.Duration // 0: the scenario's default, else the global one
	Retries int
	Pos     strictyaml.Pos // where the step's mapping starts

	specNode *yaml.Node // the kind's spec, for positions
	invalid  bool       // its spec has a problem, already reported
}

// Label names the step for messages: `step "name" (kind)`.
func (s *Step) Label() string { return fmt.Sprintf("step %q (%s)", s.Name, s.Kind) }

// document is the top level of a scenario file. Phases are kept as nodes
// until variables are resolved.
type document struct {
	Name        string            `yaml:"name" runner:"required" doc:"the scenario's name; results go under results/<name>/"`
	Description string            `yaml:"description" doc:"what the scenario measures, for people"`
	Vars        map[string]any    `yaml:"vars" doc:"variables for templates ({{ .Vars.name }}); overridden by --set and -f"`
	Paces       map[string]string `yaml:"paces" pattern:"^\\s*[0-9.]+\\s*:\\s*[^,:]+(,\\s*[0-9.]+\\s*:\\s*[^,:]+)*$" doc:"named pace sets: rps:duration[,rps:duration…]"`
	Defaults    Defaults          `yaml:"defaults" doc:"scenario-wide settings"`
	Thresholds  []string          `yaml:"thresholds" doc:"pass/fail rules on the measured figures, e.g. \"e2e.p9999 < 50ms\", \"lost == 0\", \"delivered_ratio >= 0.99 per step\"; a breach makes runner exec exit 3"`
	MustHold    float64           `yaml:"mustHold" doc:"with runner exec --fail-on-broken: the measured pace steps at or below this target rate (events/s) must hold, and one that breaks makes the run exit 3; absent, every measured step must hold"`
	Requires    []Requirement     `yaml:"requires" doc:"what must be installed before setup, on --target kubernetes: platform files and checks; a run without them fails before setup, with exit 2 and what is missing"`
	Provides    []Check           `yaml:"provides" doc:"in a platform file (runner platform install|status|uninstall): what its setup installs, as checks that status and the scenarios requiring it make"`
	Setup       stepList          `yaml:"setup" doc:"steps that install and wait until ready"`
	Warmup      stepList          `yaml:"warmup" doc:"steps whose load is recorded apart from the measured figures"`
	Measure     stepList          `yaml:"measure" doc:"the measured steps"`
	Teardown    stepList          `yaml:"teardown" doc:"steps that remove what setup installed; they always run"`
	Report      stepList          `yaml:"report" doc:"steps that turn results into reports"`
}

// stepList holds a phase's sequence node, decoded later.
type stepList struct{ node *yaml.Node }

// DecodeNode keeps a phase's node as it is, for decodePhase once the
// variables are resolved.
func (s *stepList) DecodeNode(d strictyaml.Diags, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode && n.Tag != "!!null" {
		d.At(n, "expected a list of steps, got %s", strictyaml.Describe(n))
		return
	}
	s.node = n
}

// JSONSchema is a phase's schema: a list of steps.
func (stepList) JSONSchema() map[string]any {
	return map[string]any{"type": []string{"array", "null"}, "items": map[string]any{"$ref": "#/$defs/step"}}
}

func (d *document) phases() [len(phaseNames)]*yaml.Node {
	return [...]*yaml.Node{d.Setup.node, d.Warmup.node, d.Measure.node, d.Teardown.node, d.Report.node}
}

// Options are the command-line inputs that shape a scenario.
type Options struct {
	Pace        string      // a pace set's name or a literal spec; "" for the default
	Set         []string    // key=value overrides of vars
	ValuesFiles []string    // YAML files whose top-level keys override vars
	Target      target.Kind // where the scenario will run; target.Local when empty
	RequirePace bool        // a scenario with several pace sets and no default needs Pace
	// WarmupPace, when set, is the pace of every warmup step instead of
	// its own (a matrix's --pace-override).
	WarmupPace string
}

// Load reads and decodes the scenario in file. A returned strictyaml.Diagnostics holds
// every problem found, each with its position.
func Load(file string, opts Options) (*Scenario, error) {
	src, err := input.Read(file)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return Decode(file, src, opts)
}

// Decode decodes a scenario from src; file names it in positions.
func Decode(file string, src []byte, opts Options) (*Scenario, error) {
	root, err := strictyaml.Parse(file, src)
	if err != nil {
		return nil, err
	}
	var list strictyaml.Diagnostics
	d := strictyaml.NewDiags(file, root, &list)
	var doc document
	strictyaml.Decode(d, root, reflect.ValueOf(&doc))

	sc := &Scenario{
		File:        file,
		Name:        doc.Name,
		Description: doc.Description,
		Vars:        doc.Vars,
		PaceSets:    doc.Paces,
		Defaults:    doc.Defaults,
		MustHold:    doc.MustHold,
		Requires:    doc.Requires,
		Provides:    doc.Provides,
	}
	if sc.Vars == nil {
		sc.Vars = map[string]any{}
	}
	if doc.Name != "" && !steps.ValidName(doc.Name) {
		_, n := strictyaml.FieldNode(root, "name")
		d.At(n, "name %q %s", doc.Name, steps.NameRule)
	}
	checkDefaults(d, root, doc.Defaults)
	if doc.MustHold < 0 {
		_, n := strictyaml.FieldNode(root, "mustHold")
		d.At(n, "mustHold %g: a target rate in events/s, 0 or more", doc.MustHold)
	}
	checkRequirements(d, root, &doc)
	sc.Thresholds = parseThresholds(d, root)
	checkPaceSets(d, root)
	if err := applyOverrides(sc.Vars, opts); err != nil {
		list = append(list, overrideDiagnostics(err)...)
	}
	sc.Pace = choosePace(d, root, sc, opts.Pace)
	if opts.RequirePace && opts.Pace == "" && sc.Pace.Spec == "" && len(sc.PaceSets) > 1 {
		*d.List = append(*d.List, strictyaml.Diagnostic{Pos: strictyaml.Pos{File: "--pace"}, Message: fmt.Sprintf(
			"the scenario has several pace sets and no defaults.pace: choose one with --pace (have: %s)", strings.Join(paceNames(sc.PaceSets), ", "))})
	}

	kind := opts.Target
	if kind == "" {
		kind = target.Local
	}
	templates := newRenderer(templateData{Vars: sc.Vars, Pace: sc.Pace, Target: string(kind), Scenario: sc.Name})
	for i, n := range doc.phases() {
		if n == nil {
			continue
		}
		templates.renderPhase(d, n, Phase(i))
		sc.Steps[i] = decodePhase(d, n, Phase(i))
	}
	if opts.WarmupPace != "" {
		for _, st := range sc.Steps[Warmup] {
			if l, ok := st.Spec.(*steps.Load); ok && st.Kind == "warmup" {
				l.Pace = opts.WarmupPace
			}
		}
	}
	checkSteps(d, sc, kind)
	checkSendOnlyThresholds(d, root, sc)
	if len(list) == 0 {
		checkMemory(d, sc)
	}
	sc.root = root
	return sc, list.Err()
}

// redactURLs replaces, in place, the password of every URL a scalar under
// n holds: the resolved scenario is stored with the run.
func redactURLs(n *yaml.Node) {
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode {
		n.Value = redact.String(n.Value)
	}
	for _, c := range n.Content {
		redactURLs(c)
	}
}

// parseThresholds parses the thresholds, reporting each bad one where it is.
func parseThresholds(d strictyaml.Diags, root *yaml.Node) []results.Threshold {
	_, n := strictyaml.FieldNode(root, "thresholds")
	n = strictyaml.ResolveAlias(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil // absent, or reported by strictyaml.Decode
	}
	var out []results.Threshold
	for _, item := range n.Content {
		item = strictyaml.ResolveAlias(item)
		if !strictyaml.IsScalar(item) {
			continue
		}
		t, err := results.ParseThreshold(item.Value)
		if err != nil {
			d.At(item, "%v", err)
			continue
		}
		out = append(out, t)
	}
	return out
}

// checkSendOnlyThresholds refuses a threshold on deliveries (end-to-end
// latency, losses, duplicates) in a scenario whose every measured load is
// send-only: such a run measures none, and the threshold would never be
// checked.
func checkSendOnlyThresholds(d strictyaml.Diags, root *yaml.Node, sc *Scenario) {
	loads := 0
	for _, s := range sc.Steps[Measure] {
		l, ok := s.Spec.(*steps.Load)
		if !ok {
			continue
		}
		if !l.SendOnly {
			return
		}
		loads++
	}
	if loads == 0 {
		return
	}
	_, n := strictyaml.FieldNode(root, "thresholds")
	n = strictyaml.ResolveAlias(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return
	}
	for _, item := range n.Content {
		item = strictyaml.ResolveAlias(item)
		if !strictyaml.IsScalar(item) {
			continue
		}
		if t, err := results.ParseThreshold(item.Value); err == nil && t.NeedsDelivery() {
			d.At(item, "threshold %q needs events delivered to the run's receivers, and every load of the measure phase is sendOnly: it would never be checked", item.Value)
		}
	}
}

// checkDefaults reports durations that would make steps or teardown fail at
// once.
func checkDefaults(d strictyaml.Diags, root *yaml.Node, def Defaults) {
	_, n := strictyaml.FieldNode(root, "defaults")
	for key, v := range map[string]time.Duration{"timeout": def.Timeout, "teardownTimeout": def.TeardownTimeout} {
		if k, val := strictyaml.FieldNode(n, key); k != nil && v <= 0 {
			if _, err := time.ParseDuration(val.Value); err == nil {
				d.At(val, "%s must be positive", key)
			}
		}
	}
}

// checkPaceSets reports every malformed pace set at the offending entry.
func checkPaceSets(d strictyaml.Diags, root *yaml.Node) {
	_, paces := strictyaml.FieldNode(root, "paces")
	if paces == nil || paces.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(paces.Content); i += 2 {
		key, val := paces.Content[i], strictyaml.ResolveAlias(paces.Content[i+1])
		if !steps.ValidName(key.Value) {
			d.At(key, "pace set name %q %s", key.Value, steps.NameRule)
		}
		if !strictyaml.IsScalar(val) {
			continue // already reported by strictyaml.Decode
		}
		if _, err := pace.Parse(val.Value); err != nil {
			d.Within(fmt.Sprintf("pace set %q", key.Value)).At(offsetNode(val, err), "%v", err)
		}
	}
}

// offsetNode returns a copy of a scalar node whose column points at the pace
// entry err is about, when the scalar sits on one line.
func offsetNode(n *yaml.Node, err error) *yaml.Node {
	var pe *pace.Error
	if !errors.As(err, &pe) {
		return n
	}
	c := *n
	switch n.Style {
	case 0:
		c.Column += pe.Offset
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		c.Column += 1 + pe.Offset
	}
	return &c
}

// choosePace resolves the run's pace: a named set, a literal spec, the
// scenario's default or its only set.
func choosePace(d strictyaml.Diags, root *yaml.Node, sc *Scenario, want string) pace.Pace {
	if want == "" {
		want = sc.Defaults.Pace
		if want == "" && len(sc.PaceSets) == 1 {
			for name := range sc.PaceSets {
				want = name
			}
		}
		if want == "" {
			return pace.Pace{}
		}
		if _, ok := sc.PaceSets[want]; !ok {
			_, n := strictyaml.FieldNode(root, "defaults")
			_, n2 := strictyaml.FieldNode(n, "pace")
			d.At(n2, "default pace %q is not a pace set (have: %s)", want, strings.Join(paceNames(sc.PaceSets), ", "))
			return pace.Pace{}
		}
	}
	if spec, ok := sc.PaceSets[want]; ok {
		ps, err := pace.Parse(spec)
		if err != nil {
			return pace.Pace{} // reported by checkPaceSets
		}
		return pace.Pace{Name: want, Spec: spec, Steps: ps}
	}
	if !strings.Contains(want, ":") {
		msg := fmt.Sprintf("--pace %q: no such pace set (have: %s)", want, strings.Join(paceNames(sc.PaceSets), ", "))
		if s := strictyaml.Suggest(want, paceNames(sc.PaceSets)); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		*d.List = append(*d.List, strictyaml.Diagnostic{Pos: strictyaml.Pos{File: "--pace"}, Message: msg})
		return pace.Pace{}
	}
	ps, err := pace.Parse(want)
	if err != nil {
		*d.List = append(*d.List, strictyaml.Diagnostic{Pos: strictyaml.Pos{File: "--pace"}, Message: fmt.Sprintf("%q: %v", want, err)})
		return pace.Pace{}
	}
	return pace.Pace{Name: PaceName(want), Spec: want, Steps: ps}
}

// PaceName is the name of a literal pace spec, usable as a directory:
// "500:2,1000:2" is pace-500x2_1000x2.
func PaceName(spec string) string {
	r := strings.NewReplacer(":", "x", ",", "_", " ", "")
	return "pace-" + r.Replace(spec)
}

func paceNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
