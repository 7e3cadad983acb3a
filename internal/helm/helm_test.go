package helm_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
)

func chartNames(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(charts.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d charts embedded: %v", len(names), names)
	}
	return names
}

// Every shipped chart passes `helm lint --strict`, renders with its
// defaults, and names its twin.
func TestChartsLintAndRender(t *testing.T) {
	for _, name := range chartNames(t) {
		t.Run(name, func(t *testing.T) {
			if msgs := helm.Lint(filepath.Join("..", "..", "charts", name)); len(msgs) > 0 {
				t.Errorf("lint:\n%s", strings.Join(msgs, "\n"))
			}
			c, err := helm.LoadFS(charts.FS, name, "embedded:"+name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Library {
				return // templates for the other charts: nothing to install
			}
			if c.Annotations[charts.TwinAnnotation] == "" && c.Annotations[charts.ClusterOnlyAnnotation] != "true" {
				t.Errorf("neither a %s nor a %s annotation", charts.TwinAnnotation, charts.ClusterOnlyAnnotation)
			}
			r, err := c.Render(context.Background(), "perf", "bench", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Manifest, "kind: ") {
				t.Errorf("manifest renders no object:\n%s", r.Manifest)
			}
		})
	}
}

// Subscribers, triggers and a dead-letter sink render as Knative
// destinations.
func TestRenderDestinations(t *testing.T) {
	c, err := helm.LoadFS(charts.FS, "channel-broker", "embedded:channel-broker")
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Render(context.Background(), "b", "bench", map[string]any{
		"triggers": []any{map[string]any{"name": "all", "subscriber": "receiver/perf", "filter": map[string]any{"type": "dev.perfrunner.load"}}},
		"delivery": map[string]any{"deadLetterSink": "http://127.0.0.1:1/dls"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Trigger", "broker: default", "type: dev.perfrunner.load", "kind: Service\n      name: perf", `uri: "http://127.0.0.1:1/dls"`} {
		if !strings.Contains(r.Manifest, want) {
			t.Errorf("manifest lacks %q:\n%s", want, r.Manifest)
		}
	}
	if r.Values["name"] != "default" {
		t.Errorf("merged values lack the chart's default name: %v", r.Values)
	}
}

// A value the chart's schema refuses fails with Helm's message.
func TestRenderRefusesBadValues(t *testing.T) {
	c, err := helm.LoadFS(charts.FS, "in-memory-channel", "embedded:in-memory-channel")
	if err != nil {
		t.Fatal(err)
	}
	for values, want := range map[string]map[string]any{
		"/twin/loss":                {"twin": map[string]any{"loss": 2}},
		"capasity":                  {"twin": map[string]any{"capasity": 1}},
		"/subscribers/0/subscriber": {"subscribers": []any{map[string]any{"name": "x", "subscriber": "nowhere"}}},
	} {
		_, err := c.Render(context.Background(), "c", "bench", want)
		if err == nil || !strings.Contains(err.Error(), values) || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%v: err = %v, want Helm's schema error about %s", want, err, values)
		}
	}
}

// The matrix CronJob never overlaps itself, runs the matrix from its
// ConfigMap on the kubernetes target, and keeps its results claim.
func TestMatrixCronJobChart(t *testing.T) {
	c, err := helm.LoadFS(charts.FS, "matrix-cronjob", "embedded:matrix-cronjob")
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Render(context.Background(), "nightly", "perf", map[string]any{"paceOverride": "500:2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: CronJob", "concurrencyPolicy: Forbid", "- /config/matrix.yaml", "- kubernetes", `- "500:2"`, "name: nightly-matrix", "claimName: nightly-results", "helm.sh/resource-policy: keep", "kind: Role\n", "serviceAccountName: nightly"} {
		if !strings.Contains(r.Manifest, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
	if strings.Contains(r.Manifest, "ClusterRole") {
		t.Error("the CronJob's rights reach beyond its namespace")
	}
	if _, err := c.Render(context.Background(), "nightly", "perf", map[string]any{"paceOverride": "fast"}); err == nil {
		t.Error("a malformed pace override rendered")
	}
}
