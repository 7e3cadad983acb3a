package helm

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestLabellerLabelsEveryObject(t *testing.T) {
	in := bytes.NewBufferString(`---
# Source: app/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data: {k: v}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
  labels: {app: b}
spec: {replicas: 2}
---
`)
	out, err := labeller{"runner.perf/run-id": "r1"}.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(out.String(), "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents:\n%s", len(docs), out)
	}
	for i, d := range docs {
		var obj struct {
			Metadata struct{ Labels map[string]string } `json:"metadata"`
			Spec     map[string]any                     `json:"spec"`
			Data     map[string]string                  `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Metadata.Labels["runner.perf/run-id"] != "r1" {
			t.Errorf("document %d: labels %v", i, obj.Metadata.Labels)
		}
		if i == 1 && (obj.Metadata.Labels["app"] != "b" || obj.Spec["replicas"] != float64(2)) {
			t.Errorf("the deployment lost its own fields: %s", d)
		}
		if i == 0 && obj.Data["k"] != "v" {
			t.Errorf("the config map lost its data: %s", d)
		}
	}
	if _, err := (labeller{"x": "y"}).Run(bytes.NewBufferString("a: [")); err == nil {
		t.Error("a broken manifest was labelled")
	}
}

func TestParseSet(t *testing.T) {
	v := map[string]any{"a": map[string]any{"keep": 1}}
	if err := ParseSet(v, []string{"a.b=2,c[0]=x", "d=true"}); err != nil {
		t.Fatal(err)
	}
	a := v["a"].(map[string]any)
	if a["keep"] != 1 || a["b"] != int64(2) || v["c"].([]any)[0] != "x" || v["d"] != true {
		t.Errorf("%v", v)
	}
	if err := ParseSet(v, []string{"a.b"}); err == nil || !strings.Contains(err.Error(), `set "a.b"`) {
		t.Errorf("error = %v", err)
	}
}
