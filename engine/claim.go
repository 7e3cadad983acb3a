package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/perfrunner/runner/target"
)

// claim claims a target that other runs share, before anything is set up:
// the claim comes first, so that two runs starting together see each other
// and both refuse rather than both going on; then what unfinished earlier
// runs left is refused, or removed with CleanStale.
func (r *Runner) claim(ctx context.Context) error {
	c, ok := r.target.(target.Claimer)
	if !ok {
		return nil
	}
	release, err := c.Hold(ctx)
	if err != nil {
		return err
	}
	r.release = release
	return c.CheckStale(ctx, r.CleanStale, r.obs.Message)
}

// collectTarget writes what the target can tell of the run's failure (pod
// logs, pod states and events of the run's namespaces) into the run
// directory's cluster/, before teardown removes it: the run failed or was
// interrupted.
func (r *Runner) collectTarget() {
	c, ok := r.target.(target.Collector)
	if !ok || len(c.Namespaces()) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(r.dir, "cluster")
	if err := c.Collect(ctx, dir, nil); err != nil {
		r.log.Error("collect logs and events", "err", err)
		return
	}
	r.obs.Message("logs and events of namespaces " + strings.Join(c.Namespaces(), ", ") + " written to " + dir)
}

// sweepTimeout bounds the label sweep, which has a budget of its own: it
// must run even when the teardown steps used all of theirs.
const sweepTimeout = 5 * time.Minute

// sweep deletes whatever still carries the run's label on a target that
// can sweep, after the journal is undone: the run's claim, namespaces the
// run created, objects of hooks.
func sweep(t target.Target, report func(UndoRecord), say func(string)) error {
	s, ok := t.(target.Sweeper)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	res, err := s.Sweep(ctx)
	if len(res.Unchecked) > 0 {
		say("the sweep could not look in: " + strings.Join(res.Unchecked, ", "))
	}
	if res.Deleted == 0 && err == nil {
		return nil
	}
	rec := UndoRecord{Resource: fmt.Sprintf("%d objects labelled %s", res.Deleted, res.Label), Status: "undone"}
	if err != nil {
		rec.Status, rec.Error = "failed", err.Error()
	}
	report(rec)
	return err
}
