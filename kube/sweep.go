package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/target"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// Labelled is an object found by its labels.
type Labelled struct {
	Resource  schema.GroupVersionResource
	Namespace string
	Name      string
	RunID     string // its RunLabel
}

func (l Labelled) String() string {
	r := l.Resource.Resource
	if l.Resource.Group != "" {
		r += "." + l.Resource.Group
	}
	if l.Namespace == "" {
		return r + "/" + l.Name
	}
	return l.Namespace + "/" + r + "/" + l.Name
}

// labelled lists every object matching selector, in every resource the API
// server can list and delete. What it could not look at (an API group that
// does not answer, a kind the user may not list) is returned as unchecked,
// not as an error: a user with rights in some namespaces only can still run.
func (t *Target) labelled(ctx context.Context, selector string) (found []Labelled, unchecked []string, err error) {
	t.disc.Invalidate()
	lists, err := t.disc.ServerPreferredResources()
	var failed *discovery.ErrGroupDiscoveryFailed
	switch {
	case errors.As(err, &failed):
		for gv, gerr := range failed.Groups {
			unchecked = append(unchecked, fmt.Sprintf("API group %s (%v)", gv, gerr))
		}
	case err != nil:
		return nil, nil, fmt.Errorf("list the cluster's resources: %w", err)
	}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !hasVerbs(r.Verbs, "list", "delete") || r.Name == "events" {
				continue
			}
			gvr := gv.WithResource(r.Name)
			items, err := t.dyn.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: selector})
			switch {
			case apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
				continue
			case apierrors.IsForbidden(err) || apierrors.IsServiceUnavailable(err):
				unchecked = append(unchecked, fmt.Sprintf("%s (%s)", gvr.GroupResource(), apierrors.ReasonForError(err)))
				continue
			case err != nil:
				return nil, nil, fmt.Errorf("list %s labelled %s: %w", gvr.Resource, selector, err)
			}
			for _, it := range items.Items {
				found = append(found, Labelled{Resource: gvr, Namespace: it.GetNamespace(), Name: it.GetName(), RunID: it.GetLabels()[RunLabel]})
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].String() < found[j].String() })
	sort.Strings(unchecked)
	return found, unchecked, nil
}

func hasVerbs(have metav1.Verbs, want ...string) bool {
	for _, w := range want {
		ok := false
		for _, h := range have {
			ok = ok || h == w
		}
		if !ok {
			return false
		}
	}
	return true
}

// SweepResult is what a sweep did.
type SweepResult struct {
	Deleted   []Labelled
	Unchecked []string // kinds or API groups it could not list
}

// Sweep deletes every object carrying the run's label, namespaces last,
// and waits until none is left or ctx ends.
func (t *Target) Sweep(ctx context.Context) (target.Swept, error) {
	res, err := t.sweep(ctx, t.label())
	return target.Swept{Deleted: len(res.Deleted), Label: t.label(), Unchecked: res.Unchecked}, err
}

// label is the run's label, as key=value.
func (t *Target) label() string { return t.key + "=" + t.runID }

// Stale lists the objects of other runs: those carrying RunLabel with
// another value.
func (t *Target) Stale(ctx context.Context) ([]Labelled, []string, error) {
	return t.labelled(ctx, staleSelector(t.runID))
}

// SweepStale deletes the objects of other runs, as Sweep does.
func (t *Target) SweepStale(ctx context.Context) (SweepResult, error) {
	return t.sweep(ctx, staleSelector(t.runID))
}

func staleSelector(runID string) string { return RunLabel + "," + RunLabel + "!=" + runID }

func (t *Target) sweep(ctx context.Context, selector string) (SweepResult, error) {
	found, unchecked, err := t.labelled(ctx, selector)
	res := SweepResult{Deleted: found, Unchecked: unchecked}
	if err != nil || len(found) == 0 {
		return res, err
	}
	bg := metav1.DeletePropagationBackground
	var errs []error
	for _, last := range []bool{false, true} {
		for _, l := range found {
			if (l.Resource.Resource == "namespaces" && l.Resource.Group == "") != last {
				continue
			}
			err := t.dyn.Resource(l.Resource).Namespace(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", l, err))
				continue
			}
			t.log.Info("swept", "object", l.String())
		}
	}
	for {
		left, _, err := t.labelled(ctx, selector)
		if err == nil && len(left) == 0 {
			return res, errors.Join(errs...)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			if err != nil {
				errs = append(errs, fmt.Errorf("sweep: %w", err))
				return res, errors.Join(errs...)
			}
			names := make([]string, len(left))
			for i, l := range left {
				names[i] = l.String()
			}
			errs = append(errs, fmt.Errorf("sweep: %w: %d objects labelled %s are still there: %s", context.Cause(ctx), len(left), selector, strings.Join(names, ", ")))
			return res, errors.Join(errs...)
		}
	}
}
