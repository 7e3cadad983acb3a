package scenario

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/pace"

	"gopkg.in/yaml.v3"
)

// templateData is what a template in a step sees.
type templateData struct {
	Vars     map[string]any
	Pace     pace.Pace
	Target   string
	Scenario string
}

// Bounds on what templates may do: together they render at most
// maxRendered bytes and finish within renderTimeout, so that a nested
// range over large numbers fails fast instead of filling memory.
const maxRendered = input.MaxBytes

var renderTimeout = 10 * time.Second // a variable for tests

// renderer executes a scenario's templates within those bounds.
type renderer struct {
	data     templateData
	left     int // bytes the templates may still render
	deadline time.Time
}

func newRenderer(data templateData) *renderer {
	return &renderer{data: data, left: maxRendered, deadline: time.Now().Add(renderTimeout)}
}

// render executes every scalar under n that holds a template, in place,
// with missing keys as errors.
func (r *renderer) render(d strictyaml.Diags, n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode, yaml.MappingNode:
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue // keys are never templates
			}
			r.render(d, c)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "{{") {
			return
		}
		t, err := template.New("").Option("missingkey=error").Parse(n.Value)
		if err != nil {
			d.At(n, "template: %v", templateMessage(err))
			return
		}
		out, err := r.execute(t)
		if err != nil {
			d.At(n, "template: %v%s", templateMessage(err), r.suggestKey(err))
			return
		}
		// A rendered scalar is typed by what it became: "{{ .Vars.n }}"
		// may render an integer, whether or not the template was quoted.
		n.Value = out
		n.Tag, n.Style = "", 0
	}
}

// renderPhase renders a phase's templates, each step's under its label.
func (r *renderer) renderPhase(d strictyaml.Diags, n *yaml.Node, phase Phase) {
	n = strictyaml.ResolveAlias(n)
	if n.Kind != yaml.SequenceNode {
		r.render(d, n)
		return
	}
	for i, item := range n.Content {
		r.render(d.Within(provisionalLabel(strictyaml.ResolveAlias(item), phase, i)), item)
	}
}

// missingKey matches text/template's error for a missing key, with the
// field chain it followed.
var missingKey = regexp.MustCompile(`<\.Vars((?:\.[^.>\s]+)*)>: map has no entry for key "([^"]*)"`)

// suggestKey returns a hint at the variable nearest to the one a missing
// key error names, or "".
func (r *renderer) suggestKey(err error) string {
	m := missingKey.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	level := r.data.Vars
	parts := strings.Split(strings.TrimPrefix(m[1], "."), ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := level[p].(map[string]any)
		if !ok {
			return ""
		}
		level = next
	}
	keys := make([]string, 0, len(level))
	for k := range level {
		keys = append(keys, k)
	}
	if s := strictyaml.Suggest(m[2], keys); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// execute runs t within the bytes and the time left. A template past the
// deadline is abandoned: text/template cannot be stopped, and a range that
// writes nothing never meets the byte bound.
func (r *renderer) execute(t *template.Template) (string, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func(limit int) {
		w := &cappedWriter{left: limit}
		err := t.Execute(w, r.data)
		done <- result{w.b.String(), err}
	}(r.left)
	wait := time.NewTimer(time.Until(r.deadline))
	defer wait.Stop()
	select {
	case res := <-done:
		r.left -= len(res.out)
		return res.out, res.err
	case <-wait.C:
		return "", fmt.Errorf("the scenario's templates did not finish within %s (a range over a large number?)", renderTimeout)
	}
}

// cappedWriter holds what a template writes, up to left bytes.
type cappedWriter struct {
	b    strings.Builder
	left int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, fmt.Errorf("the scenario's templates render more than %d MiB", maxRendered>>20)
	}
	w.left -= len(p)
	return w.b.Write(p)
}

// templateMessage drops text/template's own prefix, which names a nameless
// template; the position of the scalar says where it is.
func templateMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	if strings.HasPrefix(msg, ":") { // ":1:9: …", a line and column within the scalar
		if _, rest, ok := strings.Cut(msg[1:], ": "); ok {
			msg = rest
		}
	}
	return strings.TrimPrefix(msg, `executing "" at `)
}

// overrideError is a problem with a --set flag or a values file.
type overrideError struct {
	pos strictyaml.Pos
	msg string
}

func (e *overrideError) Error() string { return e.pos.String() + ": " + e.msg }

func overrideDiagnostics(err error) strictyaml.Diagnostics {
	var out strictyaml.Diagnostics
	for _, e := range unwrapAll(err) {
		var oe *overrideError
		if errors.As(e, &oe) {
			out = append(out, strictyaml.Diagnostic{Pos: oe.pos, Message: oe.msg})
		} else {
			out = append(out, strictyaml.Diagnostic{Message: e.Error()})
		}
	}
	return out
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// applyOverrides merges values files, then --set flags, over vars. Only
// variables the scenario declares can be set, so a typo cannot pass silently.
func applyOverrides(vars map[string]any, opts Options) error {
	var errs []error
	declared := make([]string, 0, len(vars))
	for k := range vars {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	undeclared := func(key string) string {
		msg := fmt.Sprintf("variable %q is not declared in the scenario's vars", key)
		if s := strictyaml.Suggest(key, declared); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return msg
	}
	for _, file := range opts.ValuesFiles {
		src, err := input.Read(file)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the position names the file
			}
			errs = append(errs, &overrideError{pos: strictyaml.Pos{File: file}, msg: fmt.Sprintf("read values: %v", err)})
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			errs = append(errs, &overrideError{pos: strictyaml.ErrorPos(file, err), msg: strictyaml.ErrorMessage(err)})
			continue
		}
		if len(doc.Content) == 0 {
			continue
		}
		top := doc.Content[0]
		if top.Kind != yaml.MappingNode {
			errs = append(errs, &overrideError{pos: strictyaml.PosOf(file, top), msg: "values must be a mapping of variable names to values"})
			continue
		}
		for i := 0; i+1 < len(top.Content); i += 2 {
			key, val := top.Content[i], top.Content[i+1]
			if _, ok := vars[key.Value]; !ok {
				errs = append(errs, &overrideError{pos: strictyaml.PosOf(file, key), msg: undeclared(key.Value)})
				continue
			}
			if err := checkDeclared(file, key.Value, val, vars[key.Value]); err != nil {
				errs = append(errs, err)
				continue
			}
			v, err := strictyaml.Value(val)
			if err != nil {
				var ve *strictyaml.ValueError
				errors.As(err, &ve)
				errs = append(errs, &overrideError{pos: strictyaml.PosOf(file, ve.Node), msg: ve.Message})
				continue
			}
			if err := sameTypes(key.Value, vars[key.Value], v); err != nil {
				errs = append(errs, &overrideError{pos: strictyaml.PosOf(file, val), msg: err.Error()})
				continue
			}
			vars[key.Value] = mergeValue(vars[key.Value], v)
		}
	}
	for _, kv := range opts.Set {
		pos := strictyaml.Pos{File: "--set " + kv}
		key, raw, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			errs = append(errs, &overrideError{pos: pos, msg: "expected key=value"})
			continue
		}
		path := strings.Split(key, ".")
		if _, ok := vars[path[0]]; !ok {
			errs = append(errs, &overrideError{pos: pos, msg: undeclared(path[0])})
			continue
		}
		var v any
		if err := yaml.Unmarshal([]byte(raw), &v); err != nil || isCollection(v) || raw == "" {
			v = raw // not a YAML scalar (or nothing: the empty string): take the text as it is
		}
		if err := setPath(vars, path, v); err != nil {
			errs = append(errs, &overrideError{pos: pos, msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// sameType refuses a value whose type the declared one rules out: a
// number where the scenario declares a number (templates hand it to a
// chart or a step that needs one), true or false where it declares a
// boolean. A declared string or null takes anything.
func sameType(name string, declared, v any) error {
	var want string
	switch declared.(type) {
	case int:
		if _, ok := v.(int); !ok {
			want = "a whole number"
		}
	case float64:
		switch v.(type) {
		case int, float64:
		default:
			want = "a number"
		}
	case bool:
		if _, ok := v.(bool); !ok {
			want = "true or false"
		}
	}
	if want == "" {
		return nil
	}
	return fmt.Errorf("%s is %s (the scenario declares %v), not %s", name, want, declared, describeValue(v))
}

// sameTypes applies sameType to v and, key by key, to the mappings in it.
func sameTypes(name string, declared, v any) error {
	dm, ok1 := declared.(map[string]any)
	vm, ok2 := v.(map[string]any)
	if !ok1 || !ok2 {
		return sameType(name, declared, v)
	}
	keys := make([]string, 0, len(vm))
	for k := range vm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := sameTypes(name+"."+k, dm[k], vm[k]); err != nil {
			return err
		}
	}
	return nil
}

// describeValue quotes a value for a message.
func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func isCollection(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

// mergeValue merges maps key by key; any other value replaces the old one.
func mergeValue(old, new any) any {
	om, ok1 := old.(map[string]any)
	nm, ok2 := new.(map[string]any)
	if !ok1 || !ok2 {
		return new
	}
	out := make(map[string]any, len(om))
	for k, v := range om {
		out[k] = v
	}
	for k, v := range nm {
		out[k] = mergeValue(out[k], v)
	}
	return out
}

// setPath sets the declared variable at path. Every part of the path must
// exist, so that a misspelt nested key is an error too.
func setPath(m map[string]any, path []string, v any) error {
	for i, p := range path {
		old, ok := m[p]
		if !ok {
			return fmt.Errorf("variable %q has no key %q%s", strings.Join(path[:i], "."), p, didYouMean(p, m))
		}
		if i == len(path)-1 {
			if err := sameType(strings.Join(path, "."), old, v); err != nil {
				return err
			}
			m[p] = v
			return nil
		}
		next, ok := old.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not a mapping", strings.Join(path[:i+1], "."))
		}
		m = next
	}
	return nil
}

func didYouMean(key string, m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	if s := strictyaml.Suggest(key, keys); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// checkDeclared reports the first key in a values-file node that the
// declared value does not have, at its position.
func checkDeclared(file, path string, n *yaml.Node, declared any) error {
	m, isMap := declared.(map[string]any)
	if n.Kind != yaml.MappingNode || !isMap {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		sub, ok := m[key.Value]
		if !ok {
			return &overrideError{pos: strictyaml.PosOf(file, key), msg: fmt.Sprintf("variable %q has no key %q%s", path, key.Value, didYouMean(key.Value, m))}
		}
		if err := checkDeclared(file, path+"."+key.Value, n.Content[i+1], sub); err != nil {
			return err
		}
	}
	return nil
}
