package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/steps"
)

// teardown runs the scenario's teardown steps, then undoes whatever the
// journal still holds, newest first. It uses a fresh context: the run's own
// may be cancelled. Every step runs even when an earlier one fails; a step
// that deletes only things setup never created is skipped.
func (r *Runner) teardown() error {
	budget := r.Scenario.Defaults.TeardownTimeout
	if budget <= 0 {
		budget = DefaultTeardownTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()

	var result *multierror.Error
	pending, err := Pending(r.dir)
	if err != nil {
		result = multierror.Append(result, err)
	}
	isPending := map[string]bool{}
	for _, res := range pending {
		isPending[res.ID()] = true
	}
	for _, s := range r.Scenario.Steps[Teardown] {
		var deletes []steps.Resource
		if d, ok := s.Spec.(steps.Deleter); ok {
			deletes, err = d.Deletes(r.env(s, 1))
			if err != nil {
				result = multierror.Append(result, &StepError{Step: s, Err: err})
				continue
			}
			if !anyPending(deletes, isPending) {
				r.finish(s, StepRecord{Status: "skipped", Reason: "nothing it deletes was created", Start: time.Now().UTC()}, nil)
				continue
			}
		}
		if err := r.runStep(ctx, s); err != nil {
			result = multierror.Append(result, err)
			continue
		}
		for _, res := range deletes {
			if isPending[res.ID()] {
				if err := r.journal.Undone(res); err != nil {
					result = multierror.Append(result, err)
				}
			}
		}
	}
	if err := r.undoPending(ctx); err != nil {
		result = multierror.Append(result, err)
	}
	if r.cluster != nil {
		r.stopHeartbeat()
		if err := sweep(r.cluster, r.reportUndo, r.obs.Message); err != nil {
			result = multierror.Append(result, err)
		}
	}
	return result.ErrorOrNil()
}

func (r *Runner) reportUndo(u UndoRecord) {
	r.record.Undone = append(r.record.Undone, u)
	r.save()
	r.obs.Undone(u)
}

// undoPending undoes whatever the journal still holds, recording each undo.
func (r *Runner) undoPending(ctx context.Context) error {
	u := undoer{dir: r.dir, target: r.Target, journal: r.journal, log: r.log, shared: r.shared, report: r.reportUndo}
	return u.pending(ctx)
}

func anyPending(list []steps.Resource, pending map[string]bool) bool {
	for _, res := range list {
		if pending[res.ID()] {
			return true
		}
	}
	return false
}

// undoer removes journaled resources that no step removed.
type undoer struct {
	dir     string
	target  string
	journal *Journal
	log     *slog.Logger
	shared  *steps.Shared // nil in runner cleanup
	report  func(UndoRecord)
}

// pending undoes every resource still pending in the journal, newest first,
// going on after a failure.
func (u undoer) pending(ctx context.Context) error {
	list, err := Pending(u.dir)
	if err != nil {
		return err
	}
	var result *multierror.Error
	for i := len(list) - 1; i >= 0; i-- {
		res := list[i]
		rec := UndoRecord{Resource: res.ID(), Status: "undone"}
		if err := u.undo(ctx, res); err != nil {
			rec.Status, rec.Error = "failed", err.Error()
			result = multierror.Append(result, fmt.Errorf("undo %s: %w", res.ID(), err))
		} else if err := u.journal.Undone(res); err != nil {
			rec.Status, rec.Error = "failed", err.Error()
			result = multierror.Append(result, err)
		}
		u.log.Info("undo", "resource", rec.Resource, "status", rec.Status, "err", rec.Error)
		u.report(rec)
	}
	return result.ErrorOrNil()
}

func (u undoer) undo(ctx context.Context, res steps.Resource) error {
	kind, ok := steps.Lookup(res.Kind)
	if !ok || kind.Undo == nil {
		return fmt.Errorf("this runner cannot undo a %q resource", res.Kind)
	}
	env := &steps.Env{
		RunDir:  u.dir,
		StepDir: filepath.Join(u.dir, "steps", res.Name),
		Target:  u.target,
		Log:     u.log.With("resource", res.ID()),
		Attempt: 1,
		Output:  io.Discard,
		Status:  func(string) {},
		Shared:  u.shared,
	}
	return kind.Undo(ctx, env, res)
}

// Cleanup finishes the teardown of a run whose process died before it could:
// it undoes every resource the run's journal still holds, newest first, and
// on kubernetes then deletes whatever still carries the run's label. It
// refuses a run directory whose runner is still alive, and a run on
// kubernetes unless cluster is the cluster it ran on. Progress goes to obs.
func Cleanup(ctx context.Context, dir string, obs Observer, cluster *kube.Cluster) ([]UndoRecord, error) {
	if obs == nil {
		obs = nopObserver{}
	}
	rec, err := ReadRunRecord(dir)
	if err != nil {
		return nil, err
	}
	lock, err := lockRunDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	journal, err := OpenJournal(dir)
	if err != nil {
		return nil, err
	}
	defer journal.Close()
	logFile, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil)).With("command", "cleanup")

	var target *kube.Target
	var shared *steps.Shared
	if rec.Target == "kubernetes" {
		if target, err = cleanupTarget(rec, cluster, log); err != nil {
			return nil, err
		}
		shared = steps.NewShared(steps.RunInfo{Dir: dir, Scenario: rec.Scenario, Target: rec.Target})
		shared.SetTarget(target)
	}
	var done []UndoRecord
	report := func(x UndoRecord) {
		done = append(done, x)
		obs.Undone(x)
	}
	u := undoer{dir: dir, target: rec.Target, journal: journal, log: log, shared: shared, report: report}
	undoErr := u.pending(ctx)
	if target != nil {
		if err := sweep(target, report, obs.Message); err != nil {
			undoErr = multierror.Append(undoErr, err)
		}
	}
	rec.Undone = append(rec.Undone, done...)
	if rec.Status == "running" {
		rec.Status = "killed"
	}
	if err := writeJSON(filepath.Join(dir, RunFile), rec); err != nil {
		undoErr = multierror.Append(undoErr, err)
	}
	return done, undoErr
}

// cleanupTarget is the target a run on kubernetes is cleaned up on: the
// cluster given must be the one the run used.
func cleanupTarget(rec *RunRecord, cluster *kube.Cluster, log *slog.Logger) (*kube.Target, error) {
	if rec.Cluster == nil || rec.RunID == "" {
		return nil, fmt.Errorf("the run record names no cluster or run id: it cannot be cleaned up on kubernetes")
	}
	if cluster == nil {
		return nil, fmt.Errorf("the run was on kubernetes (context %s, server %s): give the cluster with --kubeconfig and --context", rec.Cluster.Context, rec.Cluster.Server)
	}
	if cluster.Server != rec.Cluster.Server {
		return nil, fmt.Errorf("the run was on server %s (context %s), but context %s reaches %s: nothing was deleted", rec.Cluster.Server, rec.Cluster.Context, cluster.Context, cluster.Server)
	}
	return kube.NewTarget(cluster, rec.RunID, log.With("target", "kubernetes"))
}
