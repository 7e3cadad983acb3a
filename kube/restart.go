package kube

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/perfrunner/runner/target"
)

var _ target.Restarter = (*Target)(nil)

// RestartedAnnotation is the pod template annotation a restart sets: a
// changed template makes the Deployment roll out new pods.
const RestartedAnnotation = "runner.perf/restarted-at"

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// Restart restarts Deployments by their pod template and waits until
// their new pods are ready.
func (t *Target) Restart(ctx context.Context, namespace string, names []string, selector string) ([]string, error) {
	ri := t.dyn.Resource(deployments).Namespace(namespace)
	if selector != "" {
		list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, fmt.Errorf("deployments of %s matching %s: %w", namespace, selector, err)
		}
		for _, d := range list.Items {
			names = append(names, d.GetName())
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no Deployment in %s matches %s", namespace, selector)
		}
	}
	sort.Strings(names)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, RestartedAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
	var objs []object
	for _, n := range names {
		if _, err := ri.Patch(ctx, n, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return nil, fmt.Errorf("restart deployment %s in %s: %w", n, namespace, err)
		}
		t.log.Info("restarting", "deployment", n, "namespace", namespace)
		objs = append(objs, object{gvr: deployments, namespace: namespace, name: n, kind: "Deployment", label: "deployment/" + n})
	}
	err := t.waitAll(ctx, objs, func(u *unstructured.Unstructured) (bool, string, error) { return readiness(u, false) })
	return names, err
}
