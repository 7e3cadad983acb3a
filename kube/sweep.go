package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/target"
	corev1 "k8s.io/api/core/v1"
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
func (t *Target) label() string { return RunLabel + "=" + t.runID }

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

// Namespaces returns the namespaces the run used, sorted.
func (t *Target) Namespaces() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := make([]string, 0, len(t.namespaces))
	for ns := range t.namespaces {
		list = append(list, ns)
	}
	sort.Strings(list)
	return list
}

// maxLog bounds what is kept of one container's log.
const maxLog = 1 << 20

// Collect writes, for each namespace (nil: those the run used), its events
// (events-<ns>.txt), its pods' states (pods-<ns>.txt) and their containers'
// logs (logs/<ns>/<pod>/<container>.log) under dir. A log that cannot be
// read is noted in the pods file, not an error.
func (t *Target) Collect(ctx context.Context, dir string, namespaces []string) error {
	if len(namespaces) == 0 {
		namespaces = t.Namespaces()
	}
	if len(namespaces) == 0 {
		namespaces = []string{t.cluster.Namespace}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, ns := range namespaces {
		if err := t.collect(ctx, dir, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *Target) collect(ctx context.Context, dir, ns string) error {
	core := t.cluster.Client.CoreV1()
	var errs []error
	events, err := core.Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("events of %s: %w", ns, err))
		events = &corev1.EventList{}
	}
	items := events.Items
	when := func(e corev1.Event) time.Time {
		switch {
		case !e.LastTimestamp.IsZero():
			return e.LastTimestamp.Time
		case !e.EventTime.IsZero():
			return e.EventTime.Time
		}
		return e.CreationTimestamp.Time
	}
	sort.SliceStable(items, func(i, j int) bool { return when(items[i]).Before(when(items[j])) })
	var b strings.Builder
	for _, e := range items {
		fmt.Fprintf(&b, "%s %s %s %s/%s: %s\n", when(e).UTC().Format(time.RFC3339), e.Type, e.Reason, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, strings.TrimSpace(e.Message))
	}
	if err := os.WriteFile(filepath.Join(dir, "events-"+ns+".txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("pods of %s: %w", ns, err))...)
	}
	b.Reset()
	for _, p := range pods.Items {
		var conds []string
		for _, c := range p.Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
		}
		fmt.Fprintf(&b, "%s phase=%s node=%s %s\n", p.Name, p.Status.Phase, p.Spec.NodeName, strings.Join(conds, " "))
		for _, c := range p.Spec.Containers {
			limit := int64(maxLog)
			raw, err := core.Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, LimitBytes: &limit}).DoRaw(ctx)
			if err != nil {
				fmt.Fprintf(&b, "  container %s: no log: %v\n", c.Name, oneLine(err.Error()))
				continue
			}
			path := filepath.Join(dir, "logs", ns, p.Name, c.Name+".log")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pods-"+ns+".txt"), []byte(b.String()), 0o644); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
