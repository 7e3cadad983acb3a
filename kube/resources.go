package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/target"
)

var _ target.Observer = (*Target)(nil)

// Observe returns a reader of the CPU and memory of every container of the
// pods in namespaces. It reads the kubelets' resource metrics through the
// API server (GET /api/v1/nodes/NODE/proxy/metrics/resource: cumulative
// CPU counters with the kubelet's own timestamps), or, where the nodes'
// proxy is not allowed, the metrics API (metrics.k8s.io), whose rates it
// adds up into counters.
func (t *Target) Observe(namespaces, agents []string) results.ResourceReader {
	r := &resourceReader{t: t, namespaces: slices.Clone(namespaces), agents: map[string]bool{}, fromMetrics: map[results.ContainerRef]*metricsCounter{}}
	for _, a := range agents {
		r.agents[a] = true
	}
	return r
}

// podsEvery is how often a reader lists the observed pods again: pods come
// and go (a restart, a scale-up) while a load runs.
const podsEvery = 10 * time.Second

// resourceReader reads the observed containers; see Target.Observe.
type resourceReader struct {
	t          *Target
	namespaces []string
	agents     map[string]bool // "namespace/pod"

	mu          sync.Mutex
	pods        map[string]string // "namespace/pod" → node
	listed      time.Time
	source      string // "kubelet" or "metrics" once a read worked
	fromMetrics map[results.ContainerRef]*metricsCounter
}

// Info says what the reader reads.
func (r *resourceReader) Info() results.ResourceInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	ns := strings.Join(r.namespaces, ", ")
	if r.source == "metrics" {
		return results.ResourceInfo{Source: "the metrics API (metrics.k8s.io PodMetrics: rates over its window, added up into counters), every second, for the pods of " + ns}
	}
	return results.ResourceInfo{Source: "the kubelets' resource metrics through the API server (/api/v1/nodes/NODE/proxy/metrics/resource: container_cpu_usage_seconds_total, container_memory_working_set_bytes, with the kubelet's timestamps), read every second for the pods of " + ns + "; a kubelet refreshes them at its own interval (cAdvisor's, 10 to 15 s by default), and figures between its readings are interpolated"}
}

// Read reads every observed container once.
func (r *resourceReader) Read(ctx context.Context) ([]results.ResourceSample, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.listPods(ctx); err != nil {
		return nil, err
	}
	if len(r.pods) == 0 {
		return nil, fmt.Errorf("no pod runs in %s", strings.Join(r.namespaces, ", "))
	}
	if r.source != "metrics" {
		samples, kubeletErr := r.readKubelets(ctx)
		if kubeletErr == nil {
			r.source = "kubelet"
			return samples, nil
		}
		if r.source == "kubelet" {
			return nil, kubeletErr
		}
		samples, metricsErr := r.readMetricsAPI(ctx)
		if metricsErr != nil {
			return nil, fmt.Errorf("neither the kubelets' resource metrics (%v) nor the metrics API (%v) could be read: grant get on nodes/proxy, or install metrics-server", kubeletErr, metricsErr)
		}
		r.source = "metrics"
		return samples, nil
	}
	return r.readMetricsAPI(ctx)
}

// listPods lists the observed pods, at most every podsEvery. Callers hold
// r.mu.
func (r *resourceReader) listPods(ctx context.Context) error {
	if r.pods != nil && time.Since(r.listed) < podsEvery {
		return nil
	}
	pods := map[string]string{}
	for _, ns := range r.namespaces {
		list, err := r.t.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("pods of %s: %w", ns, err)
		}
		for _, p := range list.Items {
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning {
				pods[ns+"/"+p.Name] = p.Spec.NodeName
			}
		}
	}
	r.pods, r.listed = pods, time.Now()
	return nil
}

func (r *resourceReader) ref(ns, pod, container string) results.ContainerRef {
	key := ns + "/" + pod
	group := results.GroupSUT
	if r.agents[key] {
		group = results.GroupAgents
	}
	return results.ContainerRef{Group: group, Namespace: ns, Pod: pod, Container: container, Node: r.pods[key]}
}

// readKubelets reads the resource metrics of every node an observed pod
// runs on. A node whose kubelet does not answer (a simulated node) is left
// out; the error is that of the first node when none answered.
func (r *resourceReader) readKubelets(ctx context.Context) ([]results.ResourceSample, error) {
	var nodes []string
	for _, n := range r.pods {
		if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	slices.Sort(nodes)
	var out []results.ResourceSample
	var errs []error
	for _, node := range nodes {
		body, err := r.t.cluster.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy/metrics/resource").DoRaw(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", node, err))
			continue
		}
		samples, err := parseResourceMetrics(body, r.ref, func(ns, pod string) bool { _, ok := r.pods[ns+"/"+pod]; return ok })
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", node, err))
			continue
		}
		out = append(out, samples...)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// parseResourceMetrics reads a kubelet's /metrics/resource (Prometheus
// text): each container's CPU counter and working set, at the kubelet's
// timestamp, for the containers keep accepts.
func parseResourceMetrics(body []byte, ref func(ns, pod, container string) results.ContainerRef, keep func(ns, pod string) bool) ([]results.ResourceSample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("resource metrics: %w", err)
	}
	type key struct{ ns, pod, container string }
	byKey := map[key]*results.ResourceSample{}
	var order []key
	each := func(name string, set func(s *results.ResourceSample, v float64)) {
		f := families[name]
		if f == nil {
			return
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			k := key{labels["namespace"], labels["pod"], labels["container"]}
			if k.container == "" || !keep(k.ns, k.pod) {
				continue
			}
			s := byKey[k]
			if s == nil {
				s = &results.ResourceSample{ContainerRef: ref(k.ns, k.pod, k.container)}
				byKey[k] = s
				order = append(order, k)
			}
			if ms := m.GetTimestampMs(); ms > 0 {
				if at := time.UnixMilli(ms); at.After(s.At) {
					s.At = at
				}
			}
			set(s, value(m))
		}
	}
	each("container_cpu_usage_seconds_total", func(s *results.ResourceSample, v float64) { s.CPUSeconds = v })
	each("container_memory_working_set_bytes", func(s *results.ResourceSample, v float64) { s.MemoryBytes = v })
	out := make([]results.ResourceSample, 0, len(order))
	now := time.Now()
	for _, k := range order {
		s := byKey[k]
		if s.At.IsZero() {
			s.At = now
		}
		out = append(out, *s)
	}
	return out, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// metricsCounter adds up a container's CPU rates from the metrics API into
// a counter.
type metricsCounter struct {
	at  time.Time
	cpu float64
}

// podMetricsList is the part of metrics.k8s.io/v1beta1 PodMetricsList the
// reader uses.
type podMetricsList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Timestamp  time.Time `json:"timestamp"`
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// readMetricsAPI reads the metrics API's pod metrics of the observed
// namespaces.
func (r *resourceReader) readMetricsAPI(ctx context.Context) ([]results.ResourceSample, error) {
	var out []results.ResourceSample
	for _, ns := range r.namespaces {
		body, err := r.t.cluster.Client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", ns, "pods").DoRaw(ctx)
		if err != nil {
			return nil, err
		}
		var list podMetricsList
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("pod metrics of %s: %w", ns, err)
		}
		for _, p := range list.Items {
			if _, ok := r.pods[ns+"/"+p.Metadata.Name]; !ok {
				continue
			}
			for _, c := range p.Containers {
				cpu, err1 := resource.ParseQuantity(c.Usage["cpu"])
				mem, err2 := resource.ParseQuantity(c.Usage["memory"])
				if err := errors.Join(err1, err2); err != nil {
					return nil, fmt.Errorf("pod metrics of %s/%s: %w", ns, p.Metadata.Name, err)
				}
				ref := r.ref(ns, p.Metadata.Name, c.Name)
				mc := r.fromMetrics[ref]
				if mc == nil {
					mc = &metricsCounter{at: p.Timestamp}
					r.fromMetrics[ref] = mc
				} else if p.Timestamp.After(mc.at) {
					mc.cpu += cpu.AsApproximateFloat64() * p.Timestamp.Sub(mc.at).Seconds()
					mc.at = p.Timestamp
				}
				out = append(out, results.ResourceSample{ContainerRef: ref, At: mc.at, CPUSeconds: mc.cpu, MemoryBytes: mem.AsApproximateFloat64()})
			}
		}
	}
	return out, nil
}
