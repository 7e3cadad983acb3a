package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

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
// server can list and delete.
func (t *Target) labelled(ctx context.Context, selector string) ([]Labelled, error) {
	t.disc.Invalidate()
	lists, err := t.disc.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("list the cluster's resources: %w", err)
	}
	var found []Labelled
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
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s labelled %s: %w", gvr.Resource, selector, err)
			}
			for _, it := range items.Items {
				found = append(found, Labelled{Resource: gvr, Namespace: it.GetNamespace(), Name: it.GetName(), RunID: it.GetLabels()[RunLabel]})
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].String() < found[j].String() })
	return found, nil
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

// Sweep deletes every object carrying the run's label, namespaces last,
// and waits until none is left or ctx ends. It returns what it deleted.
func (t *Target) Sweep(ctx context.Context) ([]Labelled, error) {
	return t.sweep(ctx, RunLabel+"="+t.runID)
}

// Stale lists the objects of other runs: those carrying RunLabel with
// another value.
func (t *Target) Stale(ctx context.Context) ([]Labelled, error) {
	return t.labelled(ctx, RunLabel+","+RunLabel+"!="+t.runID)
}

// SweepStale deletes the objects of other runs, as Sweep does.
func (t *Target) SweepStale(ctx context.Context) ([]Labelled, error) {
	return t.sweep(ctx, RunLabel+","+RunLabel+"!="+t.runID)
}

func (t *Target) sweep(ctx context.Context, selector string) ([]Labelled, error) {
	found, err := t.labelled(ctx, selector)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	bg := metav1.DeletePropagationBackground
	del := func(l Labelled) error {
		err := t.dyn.Resource(l.Resource).Namespace(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", l, err)
		}
		t.log.Info("swept", "object", l.String())
		return nil
	}
	for _, last := range []bool{false, true} {
		for _, l := range found {
			if (l.Resource.Resource == "namespaces" && l.Resource.Group == "") != last {
				continue
			}
			if err := del(l); err != nil {
				return found, err
			}
		}
	}
	for {
		left, err := t.labelled(ctx, selector)
		if err == nil && len(left) == 0 {
			return found, nil
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			if err != nil {
				return found, fmt.Errorf("sweep: %w", err)
			}
			names := make([]string, len(left))
			for i, l := range left {
				names[i] = l.String()
			}
			return found, fmt.Errorf("sweep: %w: %d objects labelled %s are still there: %s", context.Cause(ctx), len(left), selector, strings.Join(names, ", "))
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
	for _, ns := range namespaces {
		if err := t.collect(ctx, dir, ns); err != nil {
			return err
		}
	}
	return nil
}

func (t *Target) collect(ctx context.Context, dir, ns string) error {
	core := t.cluster.Client.CoreV1()
	events, err := core.Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("events of %s: %w", ns, err)
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
		return fmt.Errorf("pods of %s: %w", ns, err)
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
	return os.WriteFile(filepath.Join(dir, "pods-"+ns+".txt"), []byte(b.String()), 0o644)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
