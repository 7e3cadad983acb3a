package engine

import (
	"context"
	"strings"
	"testing"
)

// On local, the cluster-only kinds fail with a clear error, and their
// journaled objects are let go: nothing was made.
func TestClusterStepsOnLocal(t *testing.T) {
	_, r, err := runScenario(t, context.Background(), `name: s
setup:
  - name: apply
    kube.apply:
      manifest: |
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: c}
measure:
  - name: wait
    sleep: {duration: 1ms}
`)
	if err == nil || !strings.Contains(err.Error(), "kube.apply needs a Kubernetes cluster (--target kubernetes); target local has none") {
		t.Fatalf("Run error = %v", err)
	}
	for _, u := range r.Record().Undone {
		if u.Status != "undone" {
			t.Errorf("undo %s: %s %s", u.Resource, u.Status, u.Error)
		}
	}
	if len(r.Record().Undone) != 1 || r.Record().Undone[0].Resource != "kube.apply/default/configmap/c" {
		t.Errorf("undone: %+v", r.Record().Undone)
	}
}
