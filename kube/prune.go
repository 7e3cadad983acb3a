package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/target"
)

var _ target.Pruner = (*Target)(nil)

// Prune deletes the objects of kind that selector matches: a run's own
// only, a platform's whether or not they carry its label (an operator the
// platform installed made them), and waits until none is left.
func (t *Target) Prune(ctx context.Context, kind, namespace, selector string) (int, error) {
	gvr, namespaced, err := t.resourceFor(kind)
	if err != nil {
		return 0, nil // no such kind: nothing of it is left
	}
	if !namespaced {
		namespace = ""
	}
	if t.key != PlatformLabel {
		selector += "," + t.label()
	}
	ri := t.dyn.Resource(gvr).Namespace(namespace)
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, fmt.Errorf("list %s matching %s: %w", gvr.Resource, selector, err)
	}
	bg := metav1.DeletePropagationBackground
	for _, it := range list.Items {
		uid := it.GetUID()
		if err := ri.Delete(ctx, it.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete %s %s: %w", gvr.Resource, it.GetName(), err)
		}
		t.log.Info("pruned", "resource", gvr.Resource, "name", it.GetName(), "namespace", it.GetNamespace())
	}
	err = waitGone(ctx, func() (string, error) {
		left, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return "some may still exist", err
		}
		if n := len(left.Items); n > 0 {
			return fmt.Sprintf("%d still exist", n), nil
		}
		return "", nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune %s matching %s: %w", gvr.Resource, selector, err)
	}
	return len(list.Items), nil
}
