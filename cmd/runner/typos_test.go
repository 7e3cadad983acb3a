package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a scenario that validates; each typo below changes one line of
// it (OLD → NEW) and must be refused by validate with the message given,
// before anything could run.
const base = `name: typos
vars: {partitions: 10}
thresholds:
  - "e2e.p9999 < 50ms"
setup:
  - name: kafka
    helm.install: {release: kafka, chart: kafka, values: {partitions: 3}}
  - name: kafka ready
    kube.wait: {release: kafka, for: [statefulset/kafka]}
  - receiver: {name: perf}
measure:
  - name: load
    load: {sink: receiver/perf, pace: "10:1"}
  - name: show
    exec: {command: [echo, "{{ .Vars.partitions }}"]}
`

func TestValidateTypos(t *testing.T) {
	if code, stdout, stderr := runCLI("validate", writeScenario(t, t.TempDir(), base)); code != exitOK {
		t.Fatalf("the base scenario: exit %d\n%s%s", code, stdout, stderr)
	}
	tests := []struct {
		name     string
		old, new string
		args     []string
		want     []string
	}{
		{name: "unknown chart", old: "chart: kafka,", new: "chart: kafak,", want: []string{
			`s.yaml:7:36: step "kafka" (helm.install): chart: no chart "kafak" is shipped with the runner (shipped: channel-broker, in-memory-channel, kafka, kafka-broker, kafka-channel, kafka-source, matrix-cronjob, perf-agents, zookeeper); a chart directory is written as a path, e.g. ./charts/kafak; did you mean kafka?`}},
		{name: "value the chart's schema refuses", old: "values: {partitions: 3}", new: "values: {partitons: 3}", want: []string{
			`s.yaml:7:50: step "kafka" (helm.install): values: chart kafka does not render with these values: additional properties 'partitons' not allowed`}},
		{name: "value of the wrong type", old: "values: {partitions: 3}", new: "values: {partitions: many}", want: []string{
			`s.yaml:7:50: step "kafka" (helm.install): values: chart kafka does not render with these values: partitions: got string, want integer`}},
		{name: "--set of the wrong type", args: []string{"--set", "partitions=abc"}, want: []string{
			`--set partitions=abc: partitions is a whole number (the scenario declares 10), not "abc"`}},
		{name: "object the release does not render", old: "for: [statefulset/kafka]", new: "for: [statefulset/kafak]", want: []string{
			`s.yaml:9:33: step "kafka ready" (kube.wait): for: release kafka renders no statefulset/kafak (it renders configmap/kafka-config, service/kafka, statefulset/kafka); did you mean statefulset/kafka?`}},
		{name: "release no step installs", old: "kube.wait: {release: kafka,", new: "kube.wait: {release: kafak,", want: []string{
			`s.yaml:9:17: step "kafka ready" (kube.wait): release: no earlier step installs release "kafak"; did you mean "kafka"?`}},
		{name: "sink no step provides", old: "sink: receiver/perf", new: "sink: receiver/pref", want: []string{
			`s.yaml:13:12: step "load" (load): sink: no earlier step provides sink receiver/pref (provided: receiver/perf); did you mean receiver/perf?`}},
		{name: "template variable", old: ".Vars.partitions", new: ".Vars.partitons", want: []string{
			`s.yaml:15:28: step "show" (exec): template: <.Vars.partitons>: map has no entry for key "partitons" (did you mean "partitions"?)`}},
		{name: "threshold", old: `"e2e.p9999 < 50ms"`, new: `"e2e.p9999 < 50 parsecs"`, want: []string{
			`s.yaml:4:5: threshold "e2e.p9999 < 50 parsecs": "50 parsecs" is not a duration such as 50ms`}},
		{name: "misspelt kind says so once", old: "  - receiver: {name: perf}", new: "  - reciever: {name: perf}", want: []string{
			`s.yaml:10:5: step "setup[2]": unknown key "reciever" (did you mean "receiver"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base
			if tt.old != "" {
				if !strings.Contains(src, tt.old) {
					t.Fatalf("the base has no %q", tt.old)
				}
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			dir := t.TempDir()
			file := writeScenario(t, dir, src)
			code, stdout, stderr := runCLI(append([]string{"validate", file}, tt.args...)...)
			if code != exitBadInput {
				t.Errorf("exit %d, want %d", code, exitBadInput)
			}
			got := strings.Split(strings.TrimSpace(strings.ReplaceAll(stderr, file, "s.yaml")), "\n")
			for _, w := range tt.want {
				found := false
				for _, line := range got {
					found = found || strings.HasPrefix(line, w)
				}
				if !found {
					t.Errorf("no line\n%s\nin\n%s%s", w, stdout, stderr)
				}
			}
			if tt.name != "misspelt kind says so once" && len(got) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%s", len(got), len(tt.want), stderr)
			}
			if tt.name == "misspelt kind says so once" && len(got) != 2 { // and the sink it would have provided
				t.Errorf("%d problems:\n%s", len(got), stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "results")); err == nil {
				t.Error("validate wrote results")
			}
		})
	}
}

// TestValidateReportsEveryProblemInOnePass: typos of different kinds in one
// file, and a bad flag, are all reported by one validate.
func TestValidateReportsEveryProblemInOnePass(t *testing.T) {
	src := strings.NewReplacer(`"e2e.p9999 < 50ms"`, `"e2e.p9999 < 50 parsecs"`, ".Vars.partitions", ".Vars.partitons", "sink: receiver/perf", "sink: receiver/pref").Replace(base) + "  - slep: {duration: 1s}\n"
	file := writeScenario(t, t.TempDir(), src)
	code, _, stderr := runCLI("validate", file, "--set", "partitions=abc")
	if code != exitBadInput {
		t.Errorf("exit %d", code)
	}
	for _, w := range []string{`--set partitions=abc: partitions is a whole number`, `s.yaml:4:5: threshold`, `s.yaml:13:12: step "load" (load): sink: no earlier step provides sink receiver/pref`, `s.yaml:15:28: step "show" (exec): template:`, `s.yaml:16:5: step "measure[2]": unknown key "slep"`} {
		if !strings.Contains(strings.ReplaceAll(stderr, file, "s.yaml"), w) {
			t.Errorf("missing %s in\n%s", w, stderr)
		}
	}
}
