package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/perfrunner/runner/target"
)

// forwardTimeout bounds finding a pod and opening a port-forward to it.
const forwardTimeout = 30 * time.Second

// Sink reaches a sink inside the cluster by a port-forward through the API
// server, as kubectl port-forward does: service/<name>:<port>[/path] (a
// ready pod the Service selects, on the port's target port) or
// pod/<name>:<port>[/path], in the run's namespace. The forward lasts until
// Close. kafka/<topic> is not offered on a cluster.
func (t *Target) Sink(s target.Sink) (string, error) {
	name, kind, obj, port, path := s.String(), s.Kind, s.Name, s.Port, s.Path
	if kind != target.SinkService && kind != target.SinkPod {
		return "", fmt.Errorf("sink %s: on kubernetes a sink is service/<name>:<port>[/path], pod/<name>:<port>[/path] (reached by a port-forward) or a URL: %w", name, target.ErrNoKafka)
	}
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	ns := t.cluster.Namespace
	pod, podPort := obj, port
	if kind == target.SinkService {
		if pod, podPort, err = t.servicePod(ctx, ns, obj, port); err != nil {
			return "", fmt.Errorf("sink %s: %w", name, err)
		}
	}
	local, err := t.forward(ctx, ns, pod, podPort)
	if err != nil {
		return "", fmt.Errorf("sink %s: port-forward to pod %s/%s port %d: %w", name, ns, pod, podPort, err)
	}
	t.log.Info("port-forward", "sink", name, "pod", pod, "port", podPort, "local", local)
	return "http://" + local + "/" + path, nil
}

// servicePod picks a ready pod of a Service, and the pod port its port
// targets.
func (t *Target) servicePod(ctx context.Context, ns, name string, port int) (string, int, error) {
	core := t.cluster.Client.CoreV1()
	svc, err := core.Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	var target *intstr.IntOrString
	for _, p := range svc.Spec.Ports {
		if int(p.Port) == port {
			tp := p.TargetPort
			target = &tp
		}
	}
	if target == nil {
		return "", 0, fmt.Errorf("service %s has no port %d", name, port)
	}
	if len(svc.Spec.Selector) == 0 {
		return "", 0, fmt.Errorf("service %s selects no pods", name)
	}
	pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", 0, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		switch {
		case target.Type == intstr.String:
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == target.StrVal {
						return p.Name, int(cp.ContainerPort), nil
					}
				}
			}
		case target.IntValue() == 0:
			return p.Name, port, nil
		default:
			return p.Name, target.IntValue(), nil
		}
	}
	return "", 0, fmt.Errorf("service %s has no ready pod (of %d) with its port %d", name, len(pods.Items), port)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// forward opens a port-forward from a free port on 127.0.0.1 to a pod's
// port and returns the local address; Close stops it.
func (t *Target) forward(ctx context.Context, ns, pod string, port int) (string, error) {
	addr, stop, err := t.forwardOnce(ctx, ns, pod, port)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	t.forwards = append(t.forwards, stop)
	t.mu.Unlock()
	return addr, nil
}

// forwardOnce opens a port-forward as forward does, and returns how to
// stop it.
func (t *Target) forwardOnce(ctx context.Context, ns, pod string, port int) (string, chan struct{}, error) {
	rt, upgrader, err := spdy.RoundTripperFor(t.cluster.Config)
	if err != nil {
		return "", nil, err
	}
	req := t.cluster.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, req.URL())
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut strings.Builder
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		return "", nil, err
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		return "", nil, fmt.Errorf("%v %s", err, strings.TrimSpace(errOut.String()))
	case <-ctx.Done():
		close(stop)
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return "", nil, fmt.Errorf("no local port: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0].Local), stop, nil
}
