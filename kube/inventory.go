package kube

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/target"
)

var _ target.Inventory = (*Target)(nil)

// Pods lists every container of the pods in namespaces, with the image
// each runs by digest and its node.
func (t *Target) Pods(ctx context.Context, namespaces []string) ([]target.PodRecord, error) {
	var out []target.PodRecord
	for _, ns := range namespaces {
		list, err := t.cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return out, fmt.Errorf("pods of %s: %w", ns, err)
		}
		for _, p := range list.Items {
			ids := map[string]string{}
			for _, st := range p.Status.ContainerStatuses {
				ids[st.Name] = st.ImageID
			}
			for _, c := range p.Spec.Containers {
				out = append(out, target.PodRecord{Namespace: ns, Pod: p.Name, Container: c.Name, Node: p.Spec.NodeName, Image: c.Image, ImageID: ids[c.Name]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Container < b.Container
	})
	return out, nil
}
