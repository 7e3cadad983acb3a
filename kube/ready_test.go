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
		{"deployment available", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: "True"}]}}`, false, true, "", ""},
		{"deployment short", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1}, spec: {replicas: 3}, status: {observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 1, conditions: [{type: Available, status: "False", reason: MinimumReplicasUnavailable, message: not enough}]}}`, false, false, "1 of 3 replicas available, 3 updated, 3 in all; conditions Available=False (MinimumReplicasUnavailable: not enough)", ""},
		{"deployment mid-rollout, an old pod still up", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 2}, spec: {replicas: 3}, status: {observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3}}`, false, false, "3 of 3 replicas available, 3 updated, 4 in all", ""},
		{"deployment not yet observed", `{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 3}, spec: {replicas: 1}, status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1}}`, false, false, "has not seen the latest spec", ""},
		{"statefulset short", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 1}, spec: {replicas: 2}, status: {observedGeneration: 1, readyReplicas: 1, updatedReplicas: 2, currentRevision: a, updateRevision: a}}`, false, false, "1 of 2 replicas ready", ""},
		{"statefulset before its pods restart", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 0, currentRevision: a, updateRevision: b}}`, false, false, "2 of 2 replicas ready, 0 updated", ""},
		{"statefulset rolled out", `{apiVersion: apps/v1, kind: StatefulSet, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: b, updateRevision: b}}`, false, true, "", ""},
		{"daemonset just created", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {generation: 1}, status: {}}`, false, false, "has not seen it yet", ""},
		{"daemonset ready", `{apiVersion: apps/v1, kind: DaemonSet, metadata: {generation: 1}, status: {observedGeneration: 1, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2}}`, false, true, "", ""},
		{"pod ready", `{kind: Pod, status: {phase: Running, conditions: [{type: Ready, status: "True"}]}}`, false, true, "", ""},
		{"pod failed", `{kind: Pod, status: {phase: Failed}}`, false, false, "", "pod failed"},
		{"job complete", `{apiVersion: batch/v1, kind: Job, status: {succeeded: 1, conditions: [{type: Complete, status: "True"}]}}`, false, true, "", ""},
		{"job failed", `{apiVersion: batch/v1, kind: Job, status: {conditions: [{type: Failed, status: "True", reason: BackoffLimitExceeded}]}}`, false, false, "", "job failed: conditions Failed=True (BackoffLimitExceeded:)"},
		{"config map", `{kind: ConfigMap}`, false, true, "", ""},
		{"conditions without Ready", `{apiVersion: policy/v1, kind: PodDisruptionBudget, status: {conditions: [{type: DisruptionAllowed, status: "False"}]}}`, false, true, "", ""},
		{"custom resource without status, in an install", `{apiVersion: eventing.knative.dev/v1, kind: Broker}`, false, true, "", ""},
		{"custom resource without status, waited for", `{apiVersion: eventing.knative.dev/v1, kind: Broker}`, true, false, "no status conditions yet", ""},
		{"custom resource without Ready, waited for", `{apiVersion: eventing.knative.dev/v1, kind: Broker, status: {conditions: [{type: Addressable, status: "True"}]}}`, true, false, "no Ready condition yet; conditions Addressable=True", ""},
		{"custom resource not ready", `{apiVersion: eventing.knative.dev/v1, kind: Broker, status: {conditions: [{type: Ready, status: "False", reason: NoIngress, message: the ingress is not ready}, {type: Addressable, status: "True"}]}}`, false, false, "conditions Addressable=True, Ready=False (NoIngress: the ingress is not ready)", ""},
		{"custom resource ready", `{apiVersion: eventing.knative.dev/v1, kind: Trigger, metadata: {generation: 1}, status: {conditions: [{type: Ready, status: "True"}]}}`, true, true, "", ""},
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

func TestIsCustom(t *testing.T) {
	for v, want := range map[string]bool{
		"v1": false, "apps/v1": false, "batch/v1": false, "networking.k8s.io/v1": false,
		"apiextensions.k8s.io/v1": false, "eventing.knative.dev/v1": true, "perf.test/v1": true,
	} {
		if isCustom(v) != want {
			t.Errorf("isCustom(%s) = %v", v, !want)
		}
	}
}
