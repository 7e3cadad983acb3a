package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/redact"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

// Default timeouts, used when neither a step nor the scenario gives one.
const (
	DefaultStepTimeout     = 10 * time.Minute
	DefaultTeardownTimeout = 10 * time.Minute
)

// ErrInterrupted is the cause of a run's context when the user interrupts it.
var ErrInterrupted = errors.New("interrupted")

// Runner executes one scenario once. Set its fields, then call Run.
type Runner struct {
	Scenario *scenario.Scenario
	OutDir   string        // results root; "results" when empty
	Target   target.Kind   // where the systems live; target.Local when empty
	Open     target.Opener // opens the run's target
	Version  string        // the runner's version, recorded in run.json
	// AgentImage is the image agents' pods run when an agents chart's
	// values name none; charts.ImageRepository at Version when empty.
	AgentImage  string
	StepTimeout time.Duration // the global step timeout; DefaultStepTimeout when zero
	Observer    Observer      // progress; nil for none
	// CleanStale, on a target shared with other runs, deletes the objects
	// of earlier runs found there instead of refusing to run.
	CleanStale bool
	// Restart, when set, restarts Deployments on a cluster before setup
	// (a matrix's restart:), and waits until they are ready again.
	Restart *steps.KubeRestart
	// Platform, when set, makes this a platform's install or uninstall
	// (runner platform) rather than a run: the scenario is a platform
	// file, and what its setup installs belongs to the platform.
	Platform PlatformAction
	// FailOnBroken makes a run in which a pace step the scenario expects
	// to hold broke end with ExitThreshold (runner exec --fail-on-broken).
	FailOnBroken bool
	// Context is how the run was produced (command line, --set, values
	// files, tags); the runner adds the variables and the environment,
	// and records it in run.json and report.md.
	Context results.RunContext

	dir     string
	dirSeen atomic.Pointer[string] // dir, for Dir from other goroutines
	// required are the checks of the scenario's requirements, once made.
	required []scenario.Check
	journal  *Journal
	shared   *steps.Shared
	target   target.Target
	// release gives up the run's claim on a shared target.
	release func()
	log     *slog.Logger
	record  RunRecord
	obs     Observer
}

// Dir returns the run directory once Run has created it, else "". It is safe
// to call from any goroutine.
func (r *Runner) Dir() string {
	if d := r.dirSeen.Load(); d != nil {
		return *d
	}
	return ""
}

// Record returns the run record as it stands.
func (r *Runner) Record() RunRecord { return r.record }

// Run creates the run directory and runs every phase. Teardown always runs,
// on a fresh context, whatever happened before; the returned error
// aggregates every step that failed. When ctx is cancelled with cause
// ErrInterrupted, the run stops its current step, tears down and returns an
// error that wraps ErrInterrupted.
func (r *Runner) Run(ctx context.Context) error {
	closeDir, err := r.open()
	if err != nil {
		return err
	}
	defer closeDir()
	if r.Platform != "" {
		return r.runPlatform(ctx)
	}

	var errs *multierror.Error
	measured, failed := r.setUpAndMeasure(ctx, &errs)
	if failed || ctx.Err() != nil {
		r.collectTarget()
	}
	breaches := r.writeResults(&errs)
	r.obs.PhaseStarted(scenario.Teardown)
	if err := r.teardown(); err != nil {
		errs = multierror.Append(errs, err)
	}
	r.runReport(ctx, measured, &errs)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	if err := r.shared.Close(closeCtx); err != nil {
		errs = multierror.Append(errs, err)
	}
	cancelClose()
	err = r.conclude(ctx, errs, breaches)
	r.close(err)
	return err
}

// close records how the run ended, in run.json and report.md, and shows
// the closing block: every pace step's verdict, the sustained rate, each
// threshold and the exit code's meaning.
func (r *Runner) close(err error) {
	sum := r.shared.Summary()
	failedAt := ""
	for _, st := range r.record.Steps {
		if st.Status == "failed" || st.Status == "timed-out" {
			failedAt = fmt.Sprintf("%s step %q (%s)", st.Phase, st.Name, st.Kind)
			break
		}
	}
	end := ending(err, sum, r.FailOnBroken, failedAt)
	r.record.Ending = &end
	r.save()
	if cerr := r.shared.Conclude(end); cerr != nil {
		r.log.Error("write the ending into the report", "err", cerr)
	}
	r.obs.Closed(Closing{Summary: sum, Ending: end, Dir: r.dir})
}

// open prepares the run directory and locks it; the function returned
// closes the journal and unlocks it.
func (r *Runner) open() (func(), error) {
	if err := r.prepare(); err != nil {
		return nil, err
	}
	lock, err := lockRunDir(r.dir)
	if err != nil {
		r.journal.Close()
		return nil, err
	}
	return func() {
		lock.Close()
		r.journal.Close()
	}, nil
}

// setUpAndMeasure claims the target, then runs setup, warmup and measure
// until a step fails or ctx ends; the steps after are skipped. It reports
// whether the measure phase began, and whether anything failed.
func (r *Runner) setUpAndMeasure(ctx context.Context, errs **multierror.Error) (measured, failed bool) {
	if err := r.checkRequirements(ctx); err != nil {
		*errs = multierror.Append(*errs, err)
		failed = true
	} else if err := r.claim(ctx); err != nil {
		*errs = multierror.Append(*errs, err)
		failed = true
	} else if err := r.restart(ctx); err != nil {
		*errs = multierror.Append(*errs, err)
		failed = true
	}
	for _, phase := range []scenario.Phase{scenario.Setup, scenario.Warmup, scenario.Measure} {
		if failed || ctx.Err() != nil {
			r.skipPhase(phase, skipReason(ctx, failed))
			continue
		}
		if phase == scenario.Warmup {
			r.recordSUT(ctx)
		}
		if phase == scenario.Measure {
			measured = true
		}
		r.obs.PhaseStarted(phase)
		for i, s := range r.Scenario.Steps[phase] {
			if err := r.runStep(ctx, s); err != nil {
				*errs = multierror.Append(*errs, err)
				failed = true
				r.skipSteps(r.Scenario.Steps[phase][i+1:], skipReason(ctx, failed))
				break
			}
		}
	}
	return measured, failed
}

// writeResults writes what was measured, whatever happened, before
// teardown removes the systems that were measured, and returns the
// thresholds it breached.
func (r *Runner) writeResults(errs **multierror.Error) []results.Breach {
	releaseSpace(r.dir)
	if err := r.shared.FinishMeasurement(); err != nil {
		*errs = multierror.Append(*errs, fmt.Errorf("write results: %w", err))
	}
	return r.shared.Breaches()
}

// runReport runs the report steps, once the measure phase ran and the run
// was not interrupted, in order whatever happens to each other; what they
// create is undone after them.
func (r *Runner) runReport(ctx context.Context, measured bool, errs **multierror.Error) {
	switch {
	case !measured:
		r.skipPhase(scenario.Report, "the measure phase did not run")
		return
	case ctx.Err() != nil:
		r.skipPhase(scenario.Report, skipReason(ctx, false))
		return
	}
	r.obs.PhaseStarted(scenario.Report)
	for _, s := range r.Scenario.Steps[scenario.Report] {
		if err := r.runStep(ctx, s); err != nil {
			*errs = multierror.Append(*errs, err)
		}
	}
	// A report step may create something too: nothing outlives the run.
	if err := r.undoPending(context.Background()); err != nil {
		*errs = multierror.Append(*errs, err)
	}
	if len(r.Scenario.Steps[scenario.Report]) > 0 {
		if err := sweep(r.target, r.reportUndo, r.obs.Message); err != nil {
			*errs = multierror.Append(*errs, err)
		}
	}
}

// conclude records how the run ended in run.json and returns its error:
// interrupted, failed (every step's error), thresholds breached, or nil.
func (r *Runner) conclude(ctx context.Context, errs *multierror.Error, breaches []results.Breach) error {
	interrupted := errors.Is(context.Cause(ctx), ErrInterrupted)
	end := time.Now().UTC()
	r.record.End = &end
	errs = collapseDiskFull(errs, r.dir)
	var broken []string
	if r.FailOnBroken {
		broken = mustHoldBroken(r.shared.Summary(), r.Scenario.MustHold)
	}
	switch {
	case interrupted:
		r.record.Status = "interrupted"
	case errs.ErrorOrNil() != nil:
		r.record.Status = "failed"
		if diskFull(errs) {
			r.record.Reason = "disk full"
		}
	case len(breaches) > 0:
		r.record.Status = "thresholds-breached"
	case len(broken) > 0:
		r.record.Status = "steps-broken"
	default:
		r.record.Status = "succeeded"
	}
	r.save()
	r.log.Info("run finished", "status", r.record.Status)
	if errs != nil {
		errs.ErrorFormat = formatErrors
	}
	if interrupted {
		return &interruptedError{err: errs.ErrorOrNil()}
	}
	if err := errs.ErrorOrNil(); err != nil {
		return err
	}
	var failures []error
	if len(breaches) > 0 {
		failures = append(failures, &ThresholdError{Breaches: breaches})
	}
	if len(broken) > 0 {
		failures = append(failures, &BrokenError{Steps: broken})
	}
	return errors.Join(failures...)
}

// ThresholdError is a run that went through but breached thresholds.
type ThresholdError struct {
	Breaches []results.Breach
}

func (e *ThresholdError) Error() string {
	lines := make([]string, len(e.Breaches))
	for i, b := range e.Breaches {
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}

type interruptedError struct{ err error }

func (e *interruptedError) Error() string {
	if e.err == nil {
		return "interrupted"
	}
	return "interrupted: " + e.err.Error()
}

func (e *interruptedError) Unwrap() []error { return []error{ErrInterrupted, e.err} }

func formatErrors(errs []error) string {
	return strings.Join(errorStrings(errs), "\n")
}

// errorStrings are errs' messages, one each.
func errorStrings(errs []error) []string {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = err.Error()
	}
	return lines
}

func skipReason(ctx context.Context, failed bool) string {
	if errors.Is(context.Cause(ctx), ErrInterrupted) {
		return "the run was interrupted"
	}
	if failed {
		return "an earlier step failed"
	}
	return "the run was cancelled"
}

func (r *Runner) prepare() error {
	sc := r.Scenario
	if r.OutDir == "" {
		r.OutDir = "results"
	}
	if r.Target == "" {
		r.Target = target.Local
	}
	if r.StepTimeout == 0 {
		r.StepTimeout = DefaultStepTimeout
	}
	r.obs = r.Observer
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	r.release = func() {}
	paceSet := sc.Pace.Name
	if paceSet == "" {
		paceSet = "no-pace"
	}
	platform := ""
	if r.Platform != "" {
		paceSet, platform = "platform-"+string(r.Platform), sc.Name
	}
	resolved, err := sc.Resolved()
	if err != nil {
		return fmt.Errorf("resolve scenario: %w", err)
	}
	now := time.Now()
	r.dir = runDirName(r.OutDir, sc.Name, paceSet, now)
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	r.dirSeen.Store(&r.dir)
	if err := os.WriteFile(filepath.Join(r.dir, ScenarioFile), resolved, 0o600); err != nil {
		return fmt.Errorf("write resolved scenario: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(r.dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	// The log file stays open for the life of the process; it is small and
	// every write goes straight to the file.
	r.log = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if r.journal, err = OpenJournal(r.dir); err != nil {
		return err
	}
	if err := reserveSpace(r.dir); err != nil {
		return err
	}
	host, _ := os.Hostname()
	r.Context.Vars = redact.Value(sc.Vars).(map[string]any)
	r.Context.Environment = results.Fingerprint(r.Version, string(r.Target))
	for i, a := range r.Context.Command {
		r.Context.Command[i] = redact.Text(a)
	}
	for i, a := range r.Context.Sets {
		r.Context.Sets[i] = redact.Text(a)
	}
	r.record = RunRecord{
		Schema:        "runner.run/v1",
		RunnerVersion: r.Version,
		Scenario:      sc.Name,
		File:          sc.File,
		PaceSet:       sc.Pace.Name,
		Pace:          sc.Pace,
		Vars:          r.Context.Vars,
		Target:        string(r.Target),
		Host:          host,
		PID:           os.Getpid(),
		Start:         now.UTC(),
		Status:        "running",
		Context:       &r.Context,
	}
	info := steps.RunInfo{Dir: r.dir, Scenario: sc.Name, PaceSet: sc.Pace.Name, Target: r.Target, Pace: sc.Pace.Steps, Thresholds: sc.Thresholds, AgentImage: r.AgentImage, Context: &r.Context}
	if info.AgentImage == "" {
		info.AgentImage = charts.ImageRepository + ":" + r.Version
	}
	if sc.File != "" {
		info.ScenarioDir = filepath.Dir(sc.File)
	}
	r.shared = steps.NewShared(info)
	r.shared.Say = func(line string) { r.obs.Message(line) }
	if r.Open == nil {
		return fmt.Errorf("target %s: the runner was given no way to open it", r.Target)
	}
	t, err := r.Open(target.Run{Kind: r.Target, ID: filepath.Base(r.dir), Dir: r.dir, Log: r.log, Host: r.shared, Platform: platform})
	if err != nil {
		return fmt.Errorf("target %s: %w", r.Target, err)
	}
	r.target = t
	r.shared.SetTarget(t)
	if l, ok := t.(target.Located); ok {
		loc := l.Location()
		r.record.RunID, r.record.Cluster = loc.RunID, &loc
	}
	r.save()
	r.log.Info("run started", "scenario", sc.Name, "file", sc.File, "pace", sc.Pace.Spec, "target", r.Target, "dir", r.dir)
	r.obs.RunStarted(r.dir, sc)
	return nil
}

// save writes run.json. A failure to write it is logged, not fatal: the
// run's own work matters more than its record.
func (r *Runner) save() {
	if r.shared != nil {
		if agents := r.shared.Agents(); len(agents) > 0 {
			r.record.Agents = agents
		}
		if charts := r.shared.Charts(); len(charts) > 0 {
			r.record.Charts = charts
		}
	}
	if err := writeJSON(filepath.Join(r.dir, RunFile), r.record); err != nil {
		r.log.Error("write run record", "err", err)
	}
}

func (r *Runner) skipPhase(p scenario.Phase, reason string) {
	r.skipSteps(r.Scenario.Steps[p], reason)
}

func (r *Runner) skipSteps(list []*scenario.Step, reason string) {
	for _, s := range list {
		r.finish(s, StepRecord{Status: "skipped", Reason: reason, Start: time.Now().UTC()}, nil)
	}
}

func (r *Runner) finish(s *scenario.Step, rec StepRecord, err error) {
	rec.Phase, rec.Name, rec.Kind, rec.Pos = s.Phase.String(), s.Name, s.Kind, s.Pos.String()
	if err != nil {
		rec.Error = err.Error()
	}
	r.record.Steps = append(r.record.Steps, rec)
	r.save()
	r.obs.StepFinished(s, rec)
	r.log.Info("step finished", "phase", rec.Phase, "step", s.Name, "kind", s.Kind, "status", rec.Status, "attempts", rec.Attempts, "duration_ms", rec.DurationMS, "err", rec.Error)
}

// timeout returns the step's timeout: its own, the scenario's default, or the
// runner's global one.
func (r *Runner) timeout(s *scenario.Step) time.Duration {
	switch {
	case s.Timeout > 0:
		return s.Timeout
	case r.Scenario.Defaults.Timeout > 0:
		return r.Scenario.Defaults.Timeout
	}
	return r.StepTimeout
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (r *Runner) stepDir(s *scenario.Step) string {
	slug := strings.Trim(unsafeChars.ReplaceAllString(s.Name, "-"), "-")
	if len(slug) > 40 {
		slug = slug[:40]
	}
	return filepath.Join(r.dir, "steps", fmt.Sprintf("%s-%02d-%s", s.Phase, s.Index, slug))
}

func (r *Runner) env(s *scenario.Step, attempt int) *steps.Env {
	return &steps.Env{
		RunDir:  r.dir,
		StepDir: r.stepDir(s),
		Target:  r.Target,
		Log:     r.log.With("step", s.Name, "kind", s.Kind),
		Attempt: attempt,
		Output:  &lineWriter{emit: func(line string) { r.obs.StepOutput(s, line) }},
		Status:  func(status string) { r.obs.StepStatus(s, status) },
		Live:    func(st steps.LoadStatus) { r.obs.LoadStatus(s, st) },
		Shared:  r.shared,
	}
}

// lineWriter hands each complete line written to it to emit.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// runStep runs one step with its timeout and retries, journaling what it is
// about to create first. The returned error names the step and its position.
func (r *Runner) runStep(ctx context.Context, s *scenario.Step) error {
	start := time.Now()
	rec := StepRecord{Start: start.UTC()}
	err := r.attempts(ctx, s, &rec)
	rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	switch {
	case err == nil:
		rec.Status = "succeeded"
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		rec.Status = "timed-out"
		// Keep what the step said about what it was waiting for.
		detail := ""
		if msg := err.Error(); msg != context.DeadlineExceeded.Error() {
			detail = ": " + strings.TrimPrefix(msg, context.DeadlineExceeded.Error()+": ")
		}
		err = fmt.Errorf("timed out after %s%s", r.timeout(s), detail)
	case ctx.Err() != nil:
		rec.Status = "cancelled"
		err = fmt.Errorf("cancelled: %w", context.Cause(ctx))
	default:
		rec.Status = "failed"
	}
	r.finish(s, rec, err)
	if err != nil {
		return &StepError{Step: s, Err: err}
	}
	return nil
}

func (r *Runner) attempts(ctx context.Context, s *scenario.Step, rec *StepRecord) error {
	var err error
	for attempt := 1; attempt-1 <= s.Retries; attempt++ {
		rec.Attempts = attempt
		if attempt > 1 {
			backoff := min(time.Duration(1<<min(attempt-2, 5))*time.Second, 30*time.Second)
			r.log.Info("retrying step", "step", s.Name, "attempt", attempt, "after", backoff.String(), "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return err
			}
		}
		err = r.attempt(ctx, s, attempt)
		if err == nil || ctx.Err() != nil || errors.Is(err, steps.ErrNotCreated) {
			return err
		}
	}
	return err
}

func (r *Runner) attempt(ctx context.Context, s *scenario.Step, attempt int) error {
	if err := ctx.Err(); err != nil {
		return err // never start, or journal, a step whose time is up
	}
	env := r.env(s, attempt)
	var resources []steps.Resource
	if c, ok := s.Spec.(steps.Creator); ok {
		var err error
		resources, err = c.Creates(env)
		if err != nil {
			return fmt.Errorf("plan what the step creates: %w", err)
		}
		// What an earlier step made stays pending whatever this one says.
		pending, err := Pending(r.dir)
		if err != nil {
			return err
		}
		held := map[string]bool{}
		for _, res := range pending {
			held[res.ID()] = true
		}
		fresh := resources[:0:0]
		for _, res := range resources {
			if held[res.ID()] {
				continue
			}
			if err := r.journal.Creating(res, s); err != nil {
				return err
			}
			fresh = append(fresh, res)
		}
		resources = fresh
	}
	var expected time.Duration
	if t, ok := s.Spec.(steps.Timed); ok {
		expected = t.Expected(env)
	}
	r.obs.StepStarted(s, attempt, expected)
	r.log.Info("step started", "phase", s.Phase.String(), "step", s.Name, "kind", s.Kind, "attempt", attempt, "pos", s.Pos.String())
	stepCtx, cancel := context.WithTimeout(target.WithStatus(ctx, env.Status), r.timeout(s))
	defer cancel()
	err := safely(r.log, s.Label(), func() error { return s.Spec.Run(stepCtx, env) })
	if errors.Is(err, steps.ErrNotCreated) {
		for _, res := range resources {
			if jerr := r.journal.Undone(res); jerr != nil {
				return multierror.Append(err, jerr)
			}
		}
	}
	return err
}

// safely runs f, turning a panic into an error, so that a bug in a step
// kind fails its step and the run still tears down. The stack goes to log.
func safely(log *slog.Logger, what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic", "in", what, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v (a bug in the runner; the stack is in %s)", p, LogFile)
		}
	}()
	return f()
}

// StepError is a step's failure, with where the step is written.
type StepError struct {
	Step *scenario.Step
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Step.Pos, e.Step.Label(), e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }
