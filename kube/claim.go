package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/target"
)

var (
	_ target.Claimer = (*Target)(nil)
	_ target.Sweeper = (*Target)(nil)
	_ target.Located = (*Target)(nil)
)

// staleTimeout bounds the search for, and the removal of, an earlier run's
// objects.
const staleTimeout = 5 * time.Minute

// CheckStale refuses to go on while objects of another run are in the
// cluster: a run going on now (its Lease is current) or an unfinished
// earlier one. With clean, the objects of runs that are not going on are
// deleted first instead.
func (t *Target) CheckStale(ctx context.Context, clean bool, say func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, staleTimeout)
	defer cancel()
	stale, unchecked, err := t.Stale(ctx)
	if err != nil {
		return fmt.Errorf("look for objects of earlier runs: %w", err)
	}
	if len(unchecked) > 0 {
		say("could not look for objects of earlier runs in: " + strings.Join(unchecked, ", "))
	}
	if len(stale) == 0 {
		return nil
	}
	live, err := t.Live(ctx, stale)
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
	if clean {
		res, err := t.SweepStale(ctx)
		if len(res.Deleted) > 0 {
			say(fmt.Sprintf("--clean-stale: deleted %d objects of earlier runs (%s)", len(res.Deleted), runsOf(res.Deleted)))
		}
		if err != nil {
			return fmt.Errorf("--clean-stale: %w", err)
		}
		// The sweep may have taken this run's Lease with a namespace.
		return t.RenewLease(ctx)
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

func runsOf(list []Labelled) string {
	seen := map[string]bool{}
	var ids []string
	for _, l := range list {
		if !seen[l.RunID] {
			seen[l.RunID] = true
			ids = append(ids, RunLabel+"="+l.RunID)
		}
	}
	sort.Strings(ids)
	return strings.Join(ids, ", ")
}

// Location says where the run is, for its record: never credentials.
func (t *Target) Location() target.Location {
	c := t.cluster
	return target.Location{RunID: t.runID, Context: c.Context, Server: c.Server, Version: c.Version, Namespace: c.Namespace, Label: t.label()}
}

// Opener opens the target of each run on cl. In runner cleanup, it refuses
// a cluster other than the one the run's record names.
func Opener(cl *Connection) target.Opener {
	return func(run target.Run) (target.Target, error) {
		if rec := run.Recorded; rec != nil {
			if cl.Server != rec.Server {
				return nil, fmt.Errorf("the run was on server %s (context %s), but context %s reaches %s: nothing was deleted", rec.Server, rec.Context, cl.Context, cl.Server)
			}
		}
		log := run.Log.With("target", string(target.Kubernetes))
		var t *Target
		var err error
		if run.Platform != "" {
			t, err = NewPlatformTarget(cl, run.Platform, log)
		} else {
			t, err = NewTarget(cl, run.ID, log)
		}
		if t != nil {
			t.host = run.Host
		}
		return t, err
	}
}
