package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/kube"
)

// staleTimeout bounds the search for, and the removal of, an earlier run's
// objects.
const staleTimeout = 5 * time.Minute

// checkStale refuses to run, on kubernetes, while objects of another run
// are in the cluster: a run going on now (its Lease is current) or an
// unfinished earlier one. With CleanStale, the objects of runs that are not
// going on are deleted first instead.
func (r *Runner) checkStale(ctx context.Context) error {
	if r.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, staleTimeout)
	defer cancel()
	stale, unchecked, err := r.cluster.Stale(ctx)
	if err != nil {
		return fmt.Errorf("look for objects of earlier runs: %w", err)
	}
	if len(unchecked) > 0 {
		r.obs.Message("could not look for objects of earlier runs in: " + strings.Join(unchecked, ", "))
	}
	if len(stale) == 0 {
		return nil
	}
	live, err := r.cluster.Live(ctx, stale)
	if err != nil {
		return err
	}
	if len(live) > 0 {
		names := make([]string, len(live))
		for i, l := range live {
			names[i] = l.String()
		}
		return fmt.Errorf("another run is going on in this cluster: %s; runs share a cluster one at a time, so nothing was installed", strings.Join(names, ", "))
	}
	if r.CleanStale {
		res, err := r.cluster.SweepStale(ctx)
		if len(res.Deleted) > 0 {
			r.obs.Message(fmt.Sprintf("--clean-stale: deleted %d objects of earlier runs (%s)", len(res.Deleted), runsOf(res.Deleted)))
		}
		if err != nil {
			return fmt.Errorf("--clean-stale: %w", err)
		}
		// The sweep may have taken this run's Lease with a namespace.
		return r.cluster.RenewLease(ctx)
	}
	names := make([]string, 0, 5)
	for i, l := range stale {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(stale)-5))
			break
		}
		names = append(names, l.String())
	}
	return fmt.Errorf("the cluster holds %d objects of unfinished earlier runs (%s): %s; finish their teardown with runner cleanup RUN_DIR, or run with --clean-stale to delete them; nothing was installed",
		len(stale), runsOf(stale), strings.Join(names, ", "))
}

func runsOf(list []kube.Labelled) string {
	seen := map[string]bool{}
	var ids []string
	for _, l := range list {
		if !seen[l.RunID] {
			seen[l.RunID] = true
			ids = append(ids, kube.RunLabel+"="+l.RunID)
		}
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}

// collectCluster writes the pod logs, pod states and events of the run's
// namespaces into the run directory's cluster/, before teardown removes
// them: the run failed or was interrupted.
func (r *Runner) collectCluster() {
	if r.cluster == nil || len(r.cluster.Namespaces()) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(r.dir, "cluster")
	if err := r.cluster.Collect(ctx, dir, nil); err != nil {
		r.log.Error("collect logs and events", "err", err)
		return
	}
	r.obs.Message("logs and events of namespaces " + strings.Join(r.cluster.Namespaces(), ", ") + " written to " + dir)
}

// sweepTimeout bounds the label sweep, which has a budget of its own: it
// must run even when the teardown steps used all of theirs.
const sweepTimeout = 5 * time.Minute

// sweep deletes whatever still carries the run's label, after the journal
// is undone: the run's Lease, namespaces the run created, objects of hooks.
func sweep(t *kube.Target, report func(UndoRecord), say func(string)) error {
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	res, err := t.Sweep(ctx)
	if len(res.Unchecked) > 0 {
		say("the sweep could not look in: " + strings.Join(res.Unchecked, ", "))
	}
	if len(res.Deleted) == 0 && err == nil {
		return nil
	}
	rec := UndoRecord{Resource: fmt.Sprintf("%d objects labelled %s=%s", len(res.Deleted), kube.RunLabel, t.RunID()), Status: "undone"}
	if err != nil {
		rec.Status, rec.Error = "failed", err.Error()
	}
	report(rec)
	return err
}
