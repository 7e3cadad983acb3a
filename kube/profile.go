package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/target"
)

var _ target.Profiler = (*Target)(nil)

// ProfilePods returns the running pods spec names (see target.Profiler).
func (t *Target) ProfilePods(ctx context.Context, spec string, port int) ([]target.ProfiledPod, error) {
	ns, name, ok := strings.Cut(spec, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("pods %q: want namespace/name or namespace/label=value", spec)
	}
	opts := metav1.ListOptions{}
	if strings.Contains(name, "=") {
		opts.LabelSelector = name
	}
	list, err := t.cluster.Client.CoreV1().Pods(ns).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("pods %s: %w", spec, err)
	}
	var out []target.ProfiledPod
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || len(p.Spec.Containers) == 0 {
			continue
		}
		if opts.LabelSelector == "" && p.Name != name && !strings.HasPrefix(p.Name, name+"-") {
			continue
		}
		pp := target.ProfiledPod{Namespace: ns, Pod: p.Name, Container: p.Spec.Containers[0].Name}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if int(cp.ContainerPort) == port {
					pp.Container = c.Name
				}
			}
		}
		out = append(out, pp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pods %s: no running pod is named so", spec)
	}
	slices.SortFunc(out, func(a, b target.ProfiledPod) int { return strings.Compare(a.Pod, b.Pod) })
	return out, nil
}

// FetchProfile GETs path from a pod's port, through a port-forward that
// lasts as long as the fetch.
func (t *Target) FetchProfile(ctx context.Context, pod target.ProfiledPod, port int, path string) ([]byte, error) {
	addr, stop, err := t.forwardOnce(ctx, pod.Namespace, pod.Pod, port)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", pod.Namespace, pod.Pod, port, err)
	}
	defer close(stop)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = " (a Knative component serves profiles only while its config-observability says runtime-profiling: enabled)"
		}
		return nil, fmt.Errorf("GET %s from %s/%s:%d: %s%s: %s", path, pod.Namespace, pod.Pod, port, resp.Status, hint, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	return body, nil
}
