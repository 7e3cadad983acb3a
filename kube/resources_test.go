package kube

import (
	"testing"
	"time"

	"github.com/perfrunner/runner/results"
)

// A kubelet's /metrics/resource as Kubernetes 1.37 writes it (the metric
// names and labels of its resource metrics collector), shortened.
const resourceMetrics = `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="dispatcher",namespace="knative-eventing",pod="imc-dispatcher-7c9d"} 12.25 1796307855886
container_cpu_usage_seconds_total{container="controller",namespace="knative-eventing",pod="eventing-controller-5f6b"} 3.5 1796307851000
container_cpu_usage_seconds_total{container="agent",namespace="perf",pod="perf-agents-0"} 1.75 1796307855886
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-1"} 9 1796307855886
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="dispatcher",namespace="knative-eventing",pod="imc-dispatcher-7c9d"} 3.145728e+07 1796307855886
container_memory_working_set_bytes{container="controller",namespace="knative-eventing",pod="eventing-controller-5f6b"} 5.24288e+07 1796307851000
container_memory_working_set_bytes{container="agent",namespace="perf",pod="perf-agents-0"} 2.097152e+07 1796307855886
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="dispatcher",namespace="knative-eventing",pod="imc-dispatcher-7c9d"} 1.7963e+09
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="knative-eventing",pod="imc-dispatcher-7c9d"} 12.5 1796307855886
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 1234.5 1796307855000
`

func TestParseResourceMetrics(t *testing.T) {
	r := &resourceReader{
		agents: map[string]bool{"perf/perf-agents-0": true},
		pods:   map[string]string{"knative-eventing/imc-dispatcher-7c9d": "runner-node", "knative-eventing/eventing-controller-5f6b": "runner-node", "perf/perf-agents-0": "runner-node"},
	}
	observed := func(ns, pod string) bool { _, ok := r.pods[ns+"/"+pod]; return ok }
	got, err := parseResourceMetrics([]byte(resourceMetrics), r.ref, observed)
	if err != nil {
		t.Fatal(err)
	}
	want := []results.ResourceSample{
		{ContainerRef: results.ContainerRef{Group: results.GroupSUT, Namespace: "knative-eventing", Pod: "imc-dispatcher-7c9d", Container: "dispatcher", Node: "runner-node"}, At: time.UnixMilli(1796307855886), CPUSeconds: 12.25, MemoryBytes: 31457280},
		{ContainerRef: results.ContainerRef{Group: results.GroupSUT, Namespace: "knative-eventing", Pod: "eventing-controller-5f6b", Container: "controller", Node: "runner-node"}, At: time.UnixMilli(1796307851000), CPUSeconds: 3.5, MemoryBytes: 52428800},
		{ContainerRef: results.ContainerRef{Group: results.GroupAgents, Namespace: "perf", Pod: "perf-agents-0", Container: "agent", Node: "runner-node"}, At: time.UnixMilli(1796307855886), CPUSeconds: 1.75, MemoryBytes: 20971520},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d (coredns is not observed; pod and node figures are not containers'): %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) || got[i].ContainerRef != want[i].ContainerRef || got[i].CPUSeconds != want[i].CPUSeconds || got[i].MemoryBytes != want[i].MemoryBytes {
			t.Errorf("sample %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := parseResourceMetrics([]byte("container_cpu_usage_seconds_total{container=\"x\" 1\n"), r.ref, observed); err == nil {
		t.Error("a malformed exposition parsed")
	}
}
