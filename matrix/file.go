// Package matrix runs scenarios × pace sets × value overrides ×
// repetitions one cell after another, each with its scenario's own setup
// and teardown, keeps a resumable index of the cells, sums the cells up with
// their spread, runs matrices on a schedule, and compares runs with their
// history.
package matrix

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

// File is a matrix file.
type File struct {
	Name        string              `yaml:"name" runner:"required" doc:"the matrix's name: results go under <out>/matrix/<name>/"`
	Description string              `yaml:"description" doc:"for people"`
	Target      string              `yaml:"target" doc:"local (default) or kubernetes; --target overrides it"`
	Scenarios   []string            `yaml:"scenarios" runner:"required" doc:"scenario files or globs, relative to the matrix file"`
	Paces       []string            `yaml:"paces" runner:"required" doc:"pace sets every scenario has (e.g. 1k-2k), or literal paces (500:10)"`
	Repetitions int                 `yaml:"repetitions" doc:"runs of every cell (default 1)"`
	Set         map[string]string   `yaml:"set" doc:"variables set in every cell, as --set"`
	Axes        map[string][]string `yaml:"axes" doc:"variable → values: every combination is a cell of its own (e.g. partitions: [10, 100])"`
	CompareAt   float64             `yaml:"compareAt" doc:"the pace-step rate (events/s) at which cells' p99.99 end-to-end latencies are compared (default: the lowest rate of the first cell with results)"`
	Restart     steps.KubeRestart   `yaml:"restart" doc:"on kubernetes, Deployments restarted before each cell's setup, as the 2019 report recreated the systems' pods between runs (e.g. namespace: knative-eventing, deployments: [imc-dispatcher]); on local every cell starts fresh twins anyway"`
}

// Matrix is a loaded, checked matrix file.
type Matrix struct {
	File
	Path  string   // the matrix file
	Files []string // the scenario files, globs expanded, in order
	// KeepWarmup keeps each scenario's own warmup pace under a pace
	// override (--keep-warmup); otherwise the warmups run the override.
	KeepWarmup bool
}

// Load reads and checks a matrix file: every problem is reported at its
// line and column, and every scenario must load with every pace set and
// axis value, so that a matrix never fails an hour in on a typo.
func Load(path string, override string) (*Matrix, error) {
	src, err := input.Read(path)
	if err != nil {
		return nil, err
	}
	m := &Matrix{Path: path}
	root, err := strictyaml.DecodeDocument(path, src, &m.File)
	if err != nil {
		return nil, err
	}
	var list strictyaml.Diagnostics
	bad := func(pos strictyaml.Pos, format string, args ...any) {
		list = append(list, strictyaml.Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...)})
	}
	if !steps.ValidName(m.Name) {
		bad(strictyaml.KeyPos(path, root, "name"), "name %q %s", m.Name, steps.NameRule)
	}
	if m.Repetitions < 0 || m.Repetitions > 1000 {
		bad(strictyaml.KeyPos(path, root, "repetitions"), "repetitions must be between 1 and 1000")
	}
	if m.Repetitions == 0 {
		m.Repetitions = 1
	}
	if m.Restart.Namespace != "" || len(m.Restart.Deployments) > 0 || m.Restart.Selector != "" {
		for _, fe := range m.Restart.Validate() {
			bad(strictyaml.KeyPos(path, root, "restart"), "restart: %s: %s", fe.Field, fe.Message)
		}
	}
	if override != "" {
		m.Target = override
	}
	if kind, err := target.ParseKind(m.Target); err != nil {
		bad(strictyaml.KeyPos(path, root, "target"), "%v", err)
	} else {
		m.Target = string(kind)
	}
	dir := filepath.Dir(path)
	seen := map[string]bool{}
	for i, pattern := range m.Scenarios {
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			bad(strictyaml.ItemPos(path, root, "scenarios", i), "%q matches no scenario file", m.Scenarios[i])
			continue
		}
		sort.Strings(matches)
		for _, f := range matches {
			// Absolute, so that --resume works from any directory.
			if abs, err := filepath.Abs(f); err == nil {
				f = abs
			}
			if !seen[f] {
				seen[f] = true
				m.Files = append(m.Files, f)
			}
		}
	}
	for i, p := range m.Paces {
		if !steps.ValidName(p) {
			if _, err := pace.Parse(p); err != nil {
				bad(strictyaml.ItemPos(path, root, "paces", i), "%q is neither a pace set's name nor a pace: %v", p, err)
			}
		}
	}
	for k, vals := range m.Axes {
		if len(vals) == 0 {
			bad(strictyaml.KeyPos(path, strictyaml.KeyNode(root, "axes"), k), "axis %s has no values", k)
		}
		if _, dup := m.Set[k]; dup {
			bad(strictyaml.KeyPos(path, strictyaml.KeyNode(root, "axes"), k), "%s is both set and an axis", k)
		}
	}
	if len(list) > 0 {
		return nil, list.Err()
	}
	// Every cell's scenario must load as it will run.
	for _, c := range m.Cells("") {
		if _, err := scenario.Load(c.File, m.CellOptions(c)); err != nil {
			bad(strictyaml.KeyPos(path, root, "scenarios"), "cell %s: %v", c.ID, indent(err.Error()))
		}
	}
	return m, list.Err()
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

// Cell is one run of the matrix: a scenario with a pace set, values and a
// repetition number.
type Cell struct {
	ID         string            `json:"id"`
	Scenario   string            `json:"scenario"`
	File       string            `json:"file"`
	PaceSet    string            `json:"pace_set"`
	Pace       string            `json:"pace,omitempty"`        // the pace run instead of the set's, with --pace-override
	WarmupPace string            `json:"warmup_pace,omitempty"` // the warmups' pace instead of their own, with --pace-override
	Values     map[string]string `json:"values,omitempty"`
	Repetition int               `json:"repetition"`
}

// group is the cell's identity without its repetition.
func (c Cell) group() string { return strings.TrimSuffix(c.ID, fmt.Sprintf("/r%d", c.Repetition)) }

// label names the cell's group for tables and graphs.
func (c Cell) label() string {
	l := c.Scenario
	for _, k := range sortedKeys(c.Values) {
		l += " " + k + "=" + c.Values[k]
	}
	return l
}

// Cells returns the matrix's cells in the order they run: by scenario, pace
// set, axis values, then repetition. override, when set, is the pace every
// cell runs.
func (m *Matrix) Cells(override string) []Cell {
	var combos []map[string]string
	combos = append(combos, map[string]string{})
	for _, k := range sortedKeys(m.Axes) {
		var next []map[string]string
		for _, c := range combos {
			for _, v := range m.Axes[k] {
				n := map[string]string{k: v}
				for kk, vv := range c {
					n[kk] = vv
				}
				next = append(next, n)
			}
		}
		combos = next
	}
	paces := m.Paces
	if override != "" {
		// Every pace set runs the same pace: one cell, named after it.
		paces = []string{scenario.PaceName(override)}
	}
	var cells []Cell
	for _, f := range m.Files {
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if sc, err := scenario.Load(f, scenario.Options{}); err == nil {
			name = sc.Name
		}
		for _, p := range paces {
			for _, vals := range combos {
				for r := 1; r <= m.Repetitions; r++ {
					id := name + "/" + p
					for _, k := range sortedKeys(vals) {
						id += "/" + k + "=" + vals[k]
					}
					id += fmt.Sprintf("/r%d", r)
					c := Cell{ID: id, Scenario: name, File: f, PaceSet: p, Pace: override, Repetition: r}
					if !m.KeepWarmup {
						c.WarmupPace = override
					}
					if len(vals) > 0 {
						c.Values = vals
					}
					cells = append(cells, c)
				}
			}
		}
	}
	return cells
}

// CellOptions are the options a cell's scenario is loaded with.
func (m *Matrix) CellOptions(c Cell) scenario.Options {
	opts := scenario.Options{Pace: c.PaceSet, Target: target.Kind(m.Target), RequirePace: true}
	if c.Pace != "" {
		opts.Pace = c.Pace
	}
	if c.WarmupPace != "" {
		opts.WarmupPace = c.WarmupPace
	}
	for _, k := range sortedKeys(m.Set) {
		opts.Set = append(opts.Set, k+"="+m.Set[k])
	}
	for _, k := range sortedKeys(c.Values) {
		opts.Set = append(opts.Set, k+"="+c.Values[k])
	}
	return opts
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Schema returns the JSON Schema of matrix files.
func Schema() []byte {
	return strictyaml.SchemaOf(&File{}, "https://perfrunner.github.io/runner/matrix.schema.json", "runner matrix")
}
