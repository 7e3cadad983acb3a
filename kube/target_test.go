package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, src string) *unstructured.Unstructured {
	t.Helper()
	// As the dynamic client decodes: integers are int64.
	j, err := yaml.YAMLToJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestReadiness(t *testing.T) {
	cases := []struct {
		name      string
		src       string
		needReady bool
		ready     bool
		why       string // part of the reason when not ready
		fails     string // part of a permanent error
	}{
		{"deployment available", `{apiVersion: v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: "True"}]}}`, false, true, "", ""},
		{"deployment short", `{apiVersion: v1, kind: Deployment, metadata: {generation: 1}, spec: {replicas: 3}, status: {observedGeneration: 1, updatedReplicas: 3, availableReplicas: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable, message: not enough}]}}`, false, false, "1 of 3 replicas available, 3 updated; conditions Available=False (MinimumReplicasUnavailable: not enough)", ""},
		{"deployment not yet observed", `{apiVersion: v1, kind: Deployment, metadata: {generation: 3}, spec: {replicas: 1}, status: {observedGeneration: 2, updatedReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True"}]}}`, false, false, "1 of 1 replicas available", ""},
		{"statefulset", `{apiVersion: v1, kind: StatefulSet, spec: {replicas: 2}, status: {readyReplicas: 1}}`, false, false, "1 of 2 replicas ready", ""},
		{"pod ready", `{apiVersion: v1, kind: Pod, status: {phase: Running, conditions: [{type: Ready, status: "True"}]}}`, false, true, "", ""},
		{"pod failed", `{apiVersion: v1, kind: Pod, status: {phase: Failed}}`, false, false, "", "pod failed"},
		{"job complete", `{apiVersion: v1, kind: Job, status: {succeeded: 1, conditions: [{type: Complete, status: "True"}]}}`, false, true, "", ""},
		{"job failed", `{apiVersion: v1, kind: Job, status: {conditions: [{type: Failed, status: "True", reason: BackoffLimitExceeded}]}}`, false, false, "", "job failed: conditions Failed=True (BackoffLimitExceeded:)"},
		{"config map", `{apiVersion: v1, kind: ConfigMap}`, false, true, "", ""},
		{"custom resource without status, in an install", `{apiVersion: v1, kind: Broker}`, false, true, "", ""},
		{"custom resource without status, waited for", `{apiVersion: v1, kind: Broker}`, true, false, "no status conditions yet", ""},
		{"custom resource not ready", `{apiVersion: v1, kind: Broker, status: {conditions: [{type: Ready, status: "False", reason: NoIngress, message: the ingress is not ready}, {type: Addressable, status: "True"}]}}`, true, false, "conditions Addressable=True, Ready=False (NoIngress: the ingress is not ready)", ""},
		{"custom resource ready", `{apiVersion: v1, kind: Trigger, metadata: {generation: 1}, status: {conditions: [{type: Ready, status: "True"}]}}`, true, true, "", ""},
	}
	for _, c := range cases {
		ok, why, err := readiness(obj(t, c.src), c.needReady)
		switch {
		case c.fails != "":
			if err == nil || !strings.Contains(err.Error(), c.fails) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.fails)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case ok != c.ready:
			t.Errorf("%s: ready = %v (%s)", c.name, ok, why)
		case !ok && !strings.Contains(why, c.why):
			t.Errorf("%s: why = %q, want %q", c.name, why, c.why)
		}
	}
}
