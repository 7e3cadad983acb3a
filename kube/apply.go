package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/perfrunner/runner/target"
)

// Apply applies objects by server-side apply, labelled with the run.
func (t *Target) Apply(ctx context.Context, namespace string, objects []target.Object) error {
	// An object that exists and is not this run's is left alone, and so is
	// every other: teardown would delete what the run did not make.
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o}
		m, ns, err := t.place(u, namespace)
		if err != nil {
			if meta.IsNoMatchError(errors.Unwrap(err)) {
				continue // a kind an earlier object of this step defines
			}
			return err
		}
		found, err := t.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, u.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(u.GetKind()), u.GetName(), err)
		case !t.owns(found.GetLabels()):
			return fmt.Errorf("%s %s exists already and is not this run's: a run applies only objects it makes (delete it, or name another); nothing was applied: %w", strings.ToLower(u.GetKind()), u.GetName(), target.ErrNotCreated)
		}
	}
	for _, o := range objects {
		u := (&unstructured.Unstructured{Object: o}).DeepCopy()
		m, ns, err := t.place(u, namespace)
		if err != nil {
			return err
		}
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[t.key] = t.runID
		u.SetLabels(labels)
		if ns != "" {
			u.SetNamespace(ns)
			if err := t.ensureNamespace(ctx, ns); err != nil {
				return err
			}
		}
		ri := t.dyn.Resource(m.Resource).Namespace(ns)
		body, err := yaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		force := true
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyYAMLPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force}); err != nil {
			return fmt.Errorf("apply %s %s: %w", strings.ToLower(u.GetKind()), u.GetName(), err)
		}
		t.log.Info("applied", "kind", u.GetKind(), "name", u.GetName(), "namespace", u.GetNamespace())
		if u.GetKind() == "CustomResourceDefinition" {
			// Objects of the new kind may follow: wait until the API
			// server serves it.
			crd := object{gvr: m.Resource, name: u.GetName(), label: "customresourcedefinition/" + u.GetName()}
			established := func(u *unstructured.Unstructured) (bool, string, error) {
				c := conditions(u)["Established"]
				return c.status == "True", conditions(u).String(), nil
			}
			if err := t.waitAll(ctx, []object{crd}, established); err != nil {
				return err
			}
			t.mapper.Reset()
		}
	}
	return nil
}
