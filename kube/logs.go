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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

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
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
	if err := os.WriteFile(filepath.Join(dir, "events-"+ns+".txt"), []byte(b.String()), 0o600); err != nil {
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
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pods-"+ns+".txt"), []byte(b.String()), 0o600); err != nil {
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
