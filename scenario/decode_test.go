package scenario

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/steps"
)

// decodeErrors decodes src and returns its diagnostics as lines.
func decodeErrors(t *testing.T, src string, opts Options) []string {
	t.Helper()
	_, err := Decode("s.yaml", []byte(src), opts)
	if err == nil {
		return nil
	}
	var ds strictyaml.Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error is %T, not Diagnostics: %v", err, err)
	}
	return strings.Split(ds.Error(), "\n")
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		opts Options
		want []string
	}{
		{
			name: "misspelled key in a spec suggests the nearest",
			src: `name: s
setup:
  - name: wait a bit
    sleep:
      duraton: 5s
`,
			want: []string{`s.yaml:5:7: step "wait a bit" (sleep): unknown key "duraton" (did you mean "duration"?); allowed: duration`},
		},
		{
			name: "step field misspelled beside the kind",
			src: `name: s
setup:
  - name: wait a bit
    sleep: {duration: 1s}
    timout: 5s
`,
			want: []string{`s.yaml:5:5: step "wait a bit" (sleep): unknown key "timout" (did you mean "timeout"?); allowed: name, retries, timeout, KINDS`},
		},
		{
			name: "step field written inside the spec",
			src: `name: s
setup:
  - sleep:
      duration: 1s
      timeout: 5s
`,
			want: []string{`s.yaml:5:7: step "setup[0]" (sleep): "timeout" is a step field: write it beside "sleep", not under it`},
		},
		{
			name: "two kind keys",
			src: `name: s
setup:
  - name: both
    sleep: {duration: 1s}
    exec: {command: ["true"]}
`,
			want: []string{`s.yaml:5:5: step "both": more than one kind key (sleep, exec); a step has exactly one`},
		},
		{
			name: "no kind key",
			src: `name: s
setup:
  - name: nothing
    timeout: 1s
`,
			want: []string{`s.yaml:3:5: step "nothing": no kind key; a step needs exactly one of: KINDS`},
		},
		{
			name: "duration without unit and retries on a kind that does not retry",
			src: `name: s
measure:
  - sleep: {duration: 1s}
    timeout: 30
    retries: 2
`,
			want: []string{
				`s.yaml:4:14: step "measure[0]" (sleep): duration "30" has no unit (write 30s or 30m)`,
				`s.yaml:5:5: step "measure[0]" (sleep): kind sleep does not retry; remove retries`,
			},
		},
		{
			name: "missing required key and a Validate error",
			src: `name: s
setup:
  - exec: {env: {A: b}}
  - sleep: {duration: -1s}
`,
			want: []string{
				`s.yaml:3:11: step "setup[0]" (exec): missing required key "command"`,
				`s.yaml:4:13: step "setup[1]" (sleep): duration: must be positive`,
			},
		},
		{
			name: "wrong types",
			src: `name: s
setup: {a: b}
measure:
  - exec: {command: run}
  - "sleep 5"
`,
			want: []string{
				`s.yaml:2:8: expected a list of steps, got a mapping`,
				`s.yaml:4:21: step "measure[0]" (exec): expected a list, got "run"`,
				`s.yaml:5:5: step measure[1]: a step is a mapping with one kind key (KINDS), got "sleep 5"`,
			},
		},
		{
			name: "top-level typo and missing name",
			src: `descripton: x
`,
			want: []string{
				`s.yaml:1:1: unknown key "descripton" (did you mean "description"?); allowed: defaults, description, measure, mustHold, name, paces, provides, report, requires, setup, teardown, thresholds, vars, warmup`,
				`s.yaml:1:1: missing required key "name"`,
			},
		},
		{
			name: "bad pace entry points at the entry",
			src: `name: s
paces:
  a: 1000:30,0:30
  b: "1000:30, 500:-1"
`,
			want: []string{
				`s.yaml:3:14: pace set "a": entry 2: rate 0 must be positive`,
				`s.yaml:4:16: pace set "b": entry 2: duration "-1" must be positive`,
			},
		},
		{
			name: "missing template variable",
			src: `name: s
vars: {partitions: 10}
setup:
  - exec: {command: ["{{ .Vars.partitons }}"]}
`,
			want: []string{`s.yaml:4:22: step "setup[0]" (exec): template: <.Vars.partitons>: map has no entry for key "partitons" (did you mean "partitions"?)`},
		},
		{
			name: "duplicate step names in a phase",
			src: `name: s
setup:
  - {name: a, sleep: {duration: 1s}}
  - {name: a, sleep: {duration: 1s}}
`,
			want: []string{`s.yaml:4:5: step "a" (sleep): name "a" is already used by the step at line 3`},
		},
		{
			name: "unknown pace set",
			src: `name: s
paces: {smoke: "1:1", long: "1:10"}
`,
			opts: Options{Pace: "smok"},
			want: []string{`--pace: --pace "smok": no such pace set (have: long, smoke); did you mean "smoke"?`},
		},
		{
			name: "several pace sets and none chosen",
			src: `name: s
paces: {smoke: "1:1", long: "1:10"}
`,
			opts: Options{RequirePace: true},
			want: []string{`--pace: the scenario has several pace sets and no defaults.pace: choose one with --pace (have: long, smoke)`},
		},
		{
			name: "set of an undeclared variable",
			src: `name: s
vars: {partitions: 10}
`,
			opts: Options{Set: []string{"partitons=3"}},
			want: []string{`--set partitons=3: variable "partitons" is not declared in the scenario's vars (did you mean "partitions"?)`},
		},
		{
			name: "non-positive defaults",
			src:  "name: s\ndefaults: {timeout: 0s, teardownTimeout: -1s}\n",
			want: []string{
				`s.yaml:2:21: timeout must be positive`,
				`s.yaml:2:42: teardownTimeout must be positive`,
			},
		},
		{
			name: "retries out of range and quoted numbers",
			src: `name: s
setup:
  - exec: {command: ["false"]}
    retries: 9223372036854775807
  - exec: {command: ["false"]}
    retries: "3"
`,
			want: []string{
				`s.yaml:4:14: step "setup[0]" (exec): retries must be between 0 and 100`,
				`s.yaml:6:14: step "setup[1]" (exec): expected an integer, got "3"`,
			},
		},
		{
			name: "a broken second document",
			src:  "name: s\n---\nsetup: [\n",
			want: []string{`s.yaml:3: invalid YAML: did not find expected node content`},
		},
		{
			name: "a bad pace behind an alias",
			src:  "name: s\ndescription: &p \"0:1\"\npaces: {a: *p}\n",
			want: []string{`s.yaml:2:15: pace set "a": entry 1: rate 0 must be positive`},
		},
		{
			name: "set of a misspelt nested key",
			src:  "name: s\nvars: {kafka: {replicas: 1}}\n",
			opts: Options{Set: []string{"kafka.replicsa=3"}},
			want: []string{`--set kafka.replicsa=3: variable "kafka" has no key "replicsa" (did you mean "replicas"?)`},
		},
		{
			name: "a threshold on deliveries when every load is send-only",
			src: `name: s
thresholds: ["publish.p99 < 50ms", "e2e.p99 < 50ms", "lost == 0 per step"]
measure:
  - load: {url: "http://127.0.0.1:9/", pace: "10:1s", sendOnly: true}
`,
			want: []string{
				`s.yaml:2:36: threshold "e2e.p99 < 50ms" needs events delivered to the run's receivers, and every load of the measure phase is sendOnly: it would never be checked`,
				`s.yaml:2:54: threshold "lost == 0 per step" needs events delivered to the run's receivers, and every load of the measure phase is sendOnly: it would never be checked`,
			},
		},
		{
			name: "requirements that name nothing, both, or a bad object",
			src: `name: s
requires:
  - name: nothing
  - platform: p.yaml
    object: crd/x
  - object: just-a-kind
    jsonpath: "{.status"
provides:
  - namespace: ns
`,
			want: []string{
				`s.yaml:3:5: give a platform file (platform:) or an object to check (object: kind/name)`,
				`s.yaml:4:5: give platform or object, not both`,
				`s.yaml:6:5: object "just-a-kind" is not kind/name`,
				`s.yaml:6:5: jsonpath and value go together`,
				`s.yaml:6:5: jsonpath "{.status": unclosed action`,
				`s.yaml:9:5: a check names an object (object: kind/name)`,
			},
		},
		{
			name: "charts from a repository or a registry are pinned",
			src: `name: s
setup:
  - name: unpinned
    helm.install: {release: a, chart: knative-operator, repo: "https://charts.example"}
  - name: a path in a repository
    helm.install: {release: b, chart: ./c, repo: "https://charts.example", version: "1"}
  - name: both
    helm.install: {release: c, chart: "oci://r.example/c", repo: "https://charts.example", version: "1"}
  - name: a bad digest
    helm.install: {release: d, chart: "oci://r.example/c", version: "1", digest: "md5:x"}
  - name: a digest for a directory
    helm.install: {release: e, chart: ./c, digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
`,
			want: []string{
				`s.yaml:4:19: step "unpinned" (helm.install): version: a chart from a repository or a registry is pinned: give its version`,
				`s.yaml:6:32: step "a path in a repository" (helm.install): chart: with repo, chart is the name of a chart in it, not a path ("./c")`,
				`s.yaml:8:60: step "both" (helm.install): repo: an oci:// chart names its registry itself: give repo or an oci:// chart, not both`,
				`s.yaml:10:74: step "a bad digest" (helm.install): digest: "md5:x" is not sha256:<64 hex digits>`,
				`s.yaml:12:44: step "a digest for a directory" (helm.install): digest: digest pins a chart archive from repo or an oci:// reference; a shipped chart or a directory has none`,
			},
		},
		{
			name: "invalid YAML",
			src:  "name: s\nsetup: [\n",
			want: []string{`s.yaml:2: invalid YAML: did not find expected node content`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeErrors(t, tt.src, tt.opts)
			for i := range tt.want {
				tt.want[i] = strings.ReplaceAll(tt.want[i], "KINDS", strings.Join(steps.Names(), ", "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

// TestDecodeReportsEveryError checks that one pass finds every problem in a
// file that has many.
func TestDecodeReportsEveryError(t *testing.T) {
	_, err := Load("testdata/bad.yaml", Options{})
	var ds strictyaml.Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		`testdata/bad.yaml:7:19: pace set "broken": entry 2: rate 0 must be positive`,
		`testdata/bad.yaml:13:7: step "wait a bit" (sleep): unknown key "timout" (did you mean "timeout"? it is a step field: write it beside "sleep", not under it); allowed: duration`,
		`testdata/bad.yaml:17:5: step "two kinds": more than one kind key (sleep, exec); a step has exactly one`,
		`testdata/bad.yaml:18:5: step "no kind": no kind key`,
		`testdata/bad.yaml:21:5: step "setup[4]" (sleep): kind sleep does not retry; remove retries`,
		`testdata/bad.yaml:22:14: step "setup[4]" (sleep): duration "5" has no unit (write 5s or 5m)`,
		`testdata/bad.yaml:24:22: step "measure[0]" (exec): template: <.Vars.partitons>: map has no entry for key "partitons" (did you mean "partitions"?)`,
		`testdata/bad.yaml:27:5: step "wait a bit": unknown key "slep" (did you mean "sleep"?)`,
	}
	if len(ds) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(ds), len(want), ds)
	}
	text := ds.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}

func TestDecodeResolves(t *testing.T) {
	src := `name: s
vars:
  partitions: 10
  kafka: {replicas: 1, name: k}
paces:
  smoke: "10:2"
  long: "1000:5m"
defaults: {pace: smoke, timeout: 2m}
setup:
  - name: topic
    timeout: 30s
    retries: 3
    exec:
      command: [echo, "{{ .Vars.partitions }}", "{{ .Vars.kafka.replicas }}", "{{ .Pace.Name }}", "{{ .Target }}"]
measure:
  - sleep: {duration: "{{ .Pace.Duration }}"}
`
	values := t.TempDir() + "/values.yaml"
	if err := os.WriteFile(values, []byte("kafka: {replicas: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := Decode("s.yaml", []byte(src), Options{Pace: "long", Set: []string{"partitions=100"}, ValuesFiles: []string{values}, Target: "kubernetes"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Pace.Name != "long" || sc.Pace.Duration() != 5*time.Minute || sc.Pace.Events() != 300000 {
		t.Errorf("pace = %+v", sc.Pace)
	}
	step := sc.Steps[Setup][0]
	if step.Timeout != 30*time.Second || step.Retries != 3 || step.Pos.String() != "s.yaml:10:5" {
		t.Errorf("step = %+v", step)
	}
	got := strings.Join(step.Spec.(*steps.Exec).Command, " ")
	if want := "echo 100 3 long kubernetes"; got != want {
		t.Errorf("command = %q, want %q", got, want)
	}
	if d := sc.Steps[Measure][0].Spec.(*steps.Sleep).Duration; d != 5*time.Minute {
		t.Errorf("templated duration = %v", d)
	}
	if sc.Defaults.Timeout != 2*time.Minute {
		t.Errorf("defaults = %+v", sc.Defaults)
	}
	if kafka := sc.Vars["kafka"].(map[string]any); kafka["name"] != "k" || kafka["replicas"] != 3 {
		t.Errorf("values file did not merge into vars: %v", kafka)
	}
	resolved, err := sc.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resolved), "echo\n") && !strings.Contains(string(resolved), "- \"100\"") && !strings.Contains(string(resolved), "100") {
		t.Errorf("resolved scenario does not hold the rendered values:\n%s", resolved)
	}
}

// --set key= sets the empty string, not nothing: a template shows it as
// empty, never as "<no value>".
func TestSetEmptyIsTheEmptyString(t *testing.T) {
	src := "name: s\nvars: {msg: hello}\nmeasure:\n  - name: \"[{{ .Vars.msg }}]\"\n    sleep: {duration: 1ms}\n"
	sc, err := Decode("s.yaml", []byte(src), Options{Set: []string{"msg="}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Steps[Measure][0].Name; got != "[]" {
		t.Errorf("step name = %q, want []", got)
	}
	if v, ok := sc.Vars["msg"].(string); !ok || v != "" {
		t.Errorf("msg = %#v, want the empty string", sc.Vars["msg"])
	}
}

// A name too long for a directory is refused where it is written, before
// anything runs.
func TestLongNamesAreRefused(t *testing.T) {
	long := strings.Repeat("n", 300)
	src := "name: " + long + "\npaces:\n  " + long + ": \"10:1\"\nmeasure:\n  - sleep: {duration: 1ms}\n"
	_, err := Decode("s.yaml", []byte(src), Options{})
	want := []string{
		"s.yaml:1:7: name \"" + long + "\" may hold only letters, digits, '.', '_' and '-', at most 100 of them",
		"s.yaml:3:3: pace set name \"" + long + "\" may hold only letters, digits, '.', '_' and '-', at most 100 of them",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors:\n%v\nwant %s", err, w)
		}
	}
}
