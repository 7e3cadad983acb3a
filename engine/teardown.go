package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
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
	for _, s := range r.Scenario.Steps[scenario.Teardown] {
		var deletes []steps.Resource
		if d, ok := s.Spec.(steps.Deleter); ok {
			deletes, err = d.Deletes(r.env(s, 1))
			if err != nil {
				result = multierror.Append(result, &StepError{Step: s, Err: err})
				continue
			}
			if !anyPending(deletes, isPending) && r.Platform != PlatformUninstall {
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
	r.release()
	if err := sweep(r.target, r.reportUndo, r.obs.Message); err != nil {
		result = multierror.Append(result, err)
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
	u := undoer{dir: r.dir, journal: r.journal, log: r.log, target: r.target, stopReceiver: r.shared.StopReceiver, report: r.reportUndo}
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
	journal *Journal
	log     *slog.Logger
	// target is the run's target; nil when its systems died with the
	// run's process (a local run, in runner cleanup).
	target target.Target
	// stopReceiver stops a receiver of this process; nil in runner cleanup.
	stopReceiver func(context.Context, string) error
	report       func(UndoRecord)
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
	env := &steps.UndoEnv{
		RunDir:       u.dir,
		StepDir:      filepath.Join(u.dir, "steps", res.Name),
		Log:          u.log.With("resource", res.ID()),
		Target:       u.target,
		StopReceiver: u.stopReceiver,
	}
	return safely(u.log, "undo "+res.ID(), func() error { return kind.Undo(ctx, env, res) })
}

// Cleanup finishes the teardown of a run whose process died before it could:
// it undoes every resource the run's journal still holds, newest first, and
// on a target that can sweep then deletes whatever still carries the run's
// label. It refuses a run directory whose runner is still alive; open opens
// the run's target again, and may refuse (a cluster other than the run's).
// Progress goes to obs.
func Cleanup(ctx context.Context, dir string, obs Observer, open target.Opener) ([]UndoRecord, error) {
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
	releaseSpace(dir) // a killed run's: room for the journal and the record
	journal, err := OpenJournal(dir)
	if err != nil {
		return nil, err
	}
	defer journal.Close()
	logFile, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil)).With("command", "cleanup")

	var t target.Target
	if open != nil {
		kind, err := target.ParseKind(rec.Target)
		if err != nil {
			return nil, fmt.Errorf("run record: %w", err)
		}
		if t, err = open(target.Run{Kind: kind, ID: rec.RunID, Dir: dir, Log: log, Recorded: recorded(rec)}); err != nil {
			return nil, err
		}
	}
	var done []UndoRecord
	report := func(x UndoRecord) {
		done = append(done, x)
		obs.Undone(x)
	}
	u := undoer{dir: dir, journal: journal, log: log, target: t, report: report}
	undoErr := u.pending(ctx)
	if t != nil {
		if err := sweep(t, report, obs.Message); err != nil {
			undoErr = multierror.Append(undoErr, err)
		}
	}
	rec.Undone = append(rec.Undone, done...)
	if rec.Status == "running" {
		rec.Status = "killed"
		if err := recoverFigures(dir, obs); err != nil {
			undoErr = multierror.Append(undoErr, err)
		}
	}
	if err := writeJSON(filepath.Join(dir, RunFile), rec); err != nil {
		undoErr = multierror.Append(undoErr, err)
	}
	return done, undoErr
}

// recoverFigures rebuilds the figures of a killed run that had begun to
// measure (see results.Recover).
func recoverFigures(dir string, obs Observer) error {
	if _, err := os.Stat(filepath.Join(dir, results.SummaryFile)); err != nil {
		return nil // it never reached a load
	}
	rec, err := results.Recover(dir)
	if err != nil {
		return fmt.Errorf("recover the figures: %w", err)
	}
	if rec.Seconds > 0 {
		obs.Message(fmt.Sprintf("figures rebuilt from %d seconds written before the kill (through second %d): %s", rec.Seconds, rec.LastSecond, results.SummaryFile))
	}
	return nil
}

// recorded is where the run record says the run was; a Location with no
// server when it names none, so that an opener can refuse it.
func recorded(rec *RunRecord) *target.Location {
	if rec.Cluster == nil {
		return &target.Location{RunID: rec.RunID}
	}
	loc := *rec.Cluster
	loc.RunID = rec.RunID
	return &loc
}
