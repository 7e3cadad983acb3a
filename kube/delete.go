package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/perfrunner/runner/target"
)

// Delete deletes an object and waits until it is gone.
func (t *Target) Delete(ctx context.Context, ref target.ObjectRef) error {
	m, err := t.mapping(ref.APIVersion, ref.Kind)
	if err != nil {
		if meta.IsNoMatchError(errors.Unwrap(err)) {
			return nil // its kind is gone (a CRD deleted before): so is it
		}
		return err
	}
	ns := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = ref.Namespace
	}
	ri := t.dyn.Resource(m.Resource).Namespace(ns)
	cur, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("delete %s: %w", ref, err)
	case !t.owns(cur.GetLabels()):
		t.log.Warn("object left alone: not this run's", "object", ref.String(), "owner", t.ownerOf(cur.GetLabels()))
		return nil
	}
	bg := metav1.DeletePropagationBackground
	uid := cur.GetUID()
	if err := ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	err = waitGone(ctx, func() (string, error) {
		_, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "it still exists", err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	t.log.Info("deleted", "object", ref.String())
	return nil
}

// waitGone polls left until it says nothing is left (""), or fails, or
// ctx ends; the error then says what was left.
func waitGone(ctx context.Context, left func() (string, error)) error {
	for {
		what, err := left()
		switch {
		case err == nil && what == "":
			return nil
		case err != nil && ctx.Err() == nil:
			return err
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", context.Cause(ctx), what)
		}
	}
}
