package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/target"
)

var _ target.Agents = (*Target)(nil)

// instanceLabel is the label the agents chart puts on its pods, the
// release's name.
const instanceLabel = "app.kubernetes.io/instance"

// ForwardAgents finds the pods of an agents release and opens a
// port-forward to each one's control port. Every pod must be ready: an
// install waits for its StatefulSet, so one that is not is an error, not a
// wait.
func (t *Target) ForwardAgents(ctx context.Context, release, namespace, port string) ([]target.AgentPod, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*forwardTimeout)
	defer cancel()
	list, err := t.cluster.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: instanceLabel + "=" + release})
	if err != nil {
		return nil, fmt.Errorf("agents of %s: %w", release, err)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return podOrder(pods[i].Name, pods[j].Name) })
	var out []target.AgentPod
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if !podReady(&p) {
			return nil, fmt.Errorf("agents of %s: pod %s is not ready", release, p.Name)
		}
		ap := target.AgentPod{Name: p.Name, Node: p.Spec.NodeName}
		control := 0
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == port {
					control, ap.Image = int(cp.ContainerPort), c.Image
					for _, st := range p.Status.ContainerStatuses {
						if st.Name == c.Name {
							ap.ImageID = st.ImageID
						}
					}
				}
			}
		}
		if control == 0 {
			return nil, fmt.Errorf("agents of %s: pod %s has no container port named %s", release, p.Name, port)
		}
		if ap.Control, err = t.forward(ctx, namespace, p.Name, control); err != nil {
			return nil, fmt.Errorf("agents of %s: port-forward to pod %s/%s port %d: %w", release, namespace, p.Name, control, err)
		}
		t.log.Info("port-forward", "agent", p.Name, "port", control, "local", ap.Control)
		out = append(out, ap)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("agents of %s: no pod in %s carries %s=%s", release, namespace, instanceLabel, release)
	}
	return out, nil
}

// podOrder orders pod names by their StatefulSet ordinal (perf-2 before
// perf-10), then by name.
func podOrder(a, b string) bool {
	ia, ea := ordinal(a)
	ib, eb := ordinal(b)
	if ea == nil && eb == nil && ia != ib {
		return ia < ib
	}
	return a < b
}

func ordinal(name string) (int, error) {
	return strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
}
