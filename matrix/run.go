package matrix

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/atomicfile"
	"github.com/perfrunner/runner/internal/flock"
	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

// Files of a matrix run directory.
const (
	IndexFile   = "index.json"
	SummaryFile = "summary.md"
	CopyFile    = "matrix.yaml"
	RunsDir     = "runs"
)

// Cell statuses in the index. A cell is done when it succeeded or breached
// a threshold: both ran to the end and measured.
const (
	Pending     = "pending"
	Running     = "running"
	Succeeded   = "succeeded"
	Breached    = "breached"
	Failed      = "failed"
	Interrupted = "interrupted"
)

// Index is index.json: the matrix's cells and how each went.
type Index struct {
	Schema       string            `json:"schema"`
	Name         string            `json:"name"`
	File         string            `json:"file"`
	Target       string            `json:"target"`
	PaceOverride string            `json:"pace_override,omitempty"`
	Set          map[string]string `json:"set,omitempty"` // variables every cell sets
	CompareAt    float64           `json:"compare_at,omitempty"`
	Created      time.Time         `json:"created"`
	Cells        []CellResult      `json:"cells"`
}

// CellResult is one cell in the index.
type CellResult struct {
	Cell
	Status       string     `json:"status"`
	RunDir       string     `json:"run_dir,omitempty"` // relative to the matrix directory
	Error        string     `json:"error,omitempty"`
	Start        *time.Time `json:"start,omitempty"`
	End          *time.Time `json:"end,omitempty"`
	Attempts     int        `json:"attempts"`
	Earlier      []string   `json:"earlier_runs,omitempty"` // run directories of earlier attempts
	SustainedRPS float64    `json:"sustained_rps"`
	Steps        []StepFig  `json:"steps,omitempty"`
}

// StepFig is a measured pace step's figures in the index.
type StepFig struct {
	TargetRPS     float64  `json:"target_rps"`
	Verdict       string   `json:"verdict"`
	PublishP99MS  float64  `json:"publish_p99_ms"`
	PublishP9999  float64  `json:"publish_p9999_ms"`
	E2EP99MS      *float64 `json:"e2e_p99_ms,omitempty"` // nil: not measured (a send-only load)
	E2EP9999MS    *float64 `json:"e2e_p9999_ms,omitempty"`
	DeliveredRPS  float64  `json:"delivered_rps"`
	Lost          int64    `json:"lost"`
	SendFailures  int64    `json:"send_failures"`
	AchievedSends float64  `json:"achieved_send_rps"`
	CPUPerEventUS *float64 `json:"cpu_per_event_us,omitempty"` // of the systems under test (on local, the runner's process); nil: not measured
}

// done reports whether the cell ran to the end.
func (c CellResult) done() bool { return c.Status == Succeeded || c.Status == Breached }

// Options say how a matrix runs.
type Options struct {
	Out          string // results root: a new run goes to Out/matrix/<name>/<time>-<id>/
	PaceOverride string // a pace every cell runs instead of its set's
	Version      string
	AgentImage   string // see engine.Runner's
	StepTimeout  time.Duration
	// Observer returns the progress observer of a cell's run; nil for none.
	Observer func(CellResult) engine.Observer
	Say      io.Writer // lines for people; nil for none
	LockDir  string    // where the per-target lock lives (default: the system's temporary directory)
	// Wait makes a matrix whose target another holds wait for it to end
	// (--wait) instead of refusing to start.
	Wait bool
	// Open opens each cell's target.
	Open target.Opener
	// Cluster is the cluster of target kubernetes, reached already: cells
	// on it hold a Lease there, so that matrices never overlap.
	Cluster *kube.Connection
	// Command is the runner's command line, recorded with each cell's run.
	Command []string
}

// ErrBusy is returned when another matrix holds the target.
var ErrBusy = errors.New("another matrix is running")

// ErrInterrupted is returned when the context ends during a cell: the cell
// was torn down and the index written.
var ErrInterrupted = errors.New("matrix interrupted")

// Start creates a matrix run directory for m and runs it. It refuses, and
// creates nothing, while another matrix runs on the same target.
func Start(ctx context.Context, m *Matrix, opts Options) (string, *Index, error) {
	ctx, unlock, err := lockTarget(ctx, opts, m.Target, m.Path)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	var id [3]byte
	_, _ = rand.Read(id[:])
	dir := filepath.Join(opts.Out, "matrix", m.Name, time.Now().UTC().Format("20060102T150405Z")+"-"+hex.EncodeToString(id[:]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	src, err := input.Read(m.Path)
	if err != nil {
		return dir, nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, CopyFile), src); err != nil {
		return dir, nil, err
	}
	abs, _ := filepath.Abs(m.Path)
	ix := &Index{Schema: "runner.matrix/v1", Name: m.Name, File: abs, Target: m.Target, PaceOverride: opts.PaceOverride, Set: m.Set, CompareAt: m.CompareAt, Created: time.Now().UTC()}
	for _, c := range m.Cells(opts.PaceOverride) {
		ix.Cells = append(ix.Cells, CellResult{Cell: c, Status: Pending})
	}
	if err := writeIndex(dir, ix); err != nil {
		return dir, nil, err
	}
	ix, err = resume(ctx, dir, opts)
	return dir, ix, err
}

// ReadIndex reads a matrix directory's index.
func ReadIndex(dir string) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, fmt.Errorf("%s is not a matrix run directory: %w", dir, err)
	}
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, IndexFile), err)
	}
	return &ix, nil
}

func writeIndex(dir string, ix *Index) error {
	return atomicfile.WriteJSON(filepath.Join(dir, IndexFile), ix)
}

// Resume runs every cell of the matrix in dir that is not done, in order: a
// cell left running by a killed process is cleaned up from its journal
// first, then run again in a fresh run directory. A failed cell is recorded
// and the matrix goes on; an interrupt tears the running cell down, writes
// the index and returns ErrInterrupted.
func Resume(ctx context.Context, dir string, opts Options) (*Index, error) {
	ix, err := ReadIndex(dir)
	if err != nil {
		return nil, err
	}
	ctx, unlock, err := lockTarget(ctx, opts, ix.Target, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return resume(ctx, dir, opts)
}

// resume is Resume with the target's lock held.
func resume(ctx context.Context, dir string, opts Options) (*Index, error) {
	ix, err := ReadIndex(dir)
	if err != nil {
		return nil, err
	}
	m := &Matrix{File: File{Name: ix.Name, Target: ix.Target, Set: ix.Set, CompareAt: ix.CompareAt}}
	say := func(format string, args ...any) {
		if opts.Say != nil {
			fmt.Fprintf(opts.Say, format+"\n", args...)
		}
	}
	todo := 0
	for _, c := range ix.Cells {
		if !c.done() {
			todo++
		}
	}
	n := 0
	for i := range ix.Cells {
		c := &ix.Cells[i]
		if c.done() {
			continue
		}
		n++
		if ctx.Err() != nil {
			_ = WriteSummary(dir, ix, say)
			return ix, ErrInterrupted
		}
		if c.RunDir != "" {
			// A run that was killed, or whose teardown failed, may have
			// left things installed: finish its teardown before the cell
			// runs again on fresh systems, and keep its directory.
			runDir := filepath.Join(dir, c.RunDir)
			// On kubernetes the journal may be empty while objects carrying
			// the run's label remain (a sweep that was cut short).
			if pending, _ := engine.Pending(runDir); len(pending) > 0 || opts.Cluster != nil {
				say("cell %s: finishing the teardown of its earlier run %s (%d left)", c.ID, c.RunDir, len(pending))
				if _, err := engine.Cleanup(context.WithoutCancel(ctx), runDir, nil, opts.Open); err != nil {
					c.Status, c.Error = Failed, fmt.Sprintf("cleanup of its earlier run %s: %v", c.RunDir, err)
					say("cell %s: %s; skipped, finish it with runner cleanup %s", c.ID, c.Error, runDir)
					if err := writeIndex(dir, ix); err != nil {
						return ix, err
					}
					continue
				}
			}
			c.Earlier = append(c.Earlier, c.RunDir)
		}
		say("cell %d of %d to run (%d in all): %s", n, todo, len(ix.Cells), c.ID)
		runErr := runCell(ctx, dir, m, c, ix, opts)
		if err := writeIndex(dir, ix); err != nil {
			return ix, err
		}
		if errors.Is(runErr, engine.ErrInterrupted) || ctx.Err() != nil {
			_ = WriteSummary(dir, ix, say)
			return ix, ErrInterrupted
		}
		say("cell %s: %s", c.ID, describe(*c))
	}
	return ix, WriteSummary(dir, ix, say)
}

func describe(c CellResult) string {
	switch c.Status {
	case Succeeded, Breached:
		return fmt.Sprintf("%s, sustained %g events/s", c.Status, c.SustainedRPS)
	}
	if c.Error != "" {
		return c.Status + ": " + strings.SplitN(c.Error, "\n", 2)[0]
	}
	return c.Status
}

// runCell runs one cell and records its outcome in c.
func runCell(ctx context.Context, dir string, m *Matrix, c *CellResult, ix *Index, opts Options) error {
	start := time.Now().UTC()
	c.Start, c.End, c.Error, c.Steps, c.SustainedRPS = &start, nil, "", nil, 0
	c.Attempts++
	c.Status, c.RunDir = Running, ""
	if err := writeIndex(dir, ix); err != nil {
		return err
	}
	fail := func(status string, err error) error {
		end := time.Now().UTC()
		c.End, c.Status, c.Error = &end, status, err.Error()
		return err
	}
	cellOpts := m.CellOptions(c.Cell)
	sc, err := scenario.Load(c.File, cellOpts)
	if err != nil {
		return fail(Failed, err)
	}
	var obs engine.Observer = nop{}
	if opts.Observer != nil {
		obs = opts.Observer(*c)
	}
	// The cell's run directory is in the index before its first step, so
	// that a kill leaves the way to its journal.
	watch := &dirWatch{Observer: obs, onStart: func(runDir string) {
		if rel, err := filepath.Rel(dir, runDir); err == nil {
			c.RunDir = rel
		}
		_ = writeIndex(dir, ix)
	}}
	r := &engine.Runner{Scenario: sc, OutDir: filepath.Join(dir, RunsDir), Target: target.Kind(m.Target), Open: opts.Open, Version: opts.Version, AgentImage: opts.AgentImage, StepTimeout: opts.StepTimeout, Observer: watch,
		Context: results.RunContext{Command: slices.Clone(opts.Command), Sets: cellOpts.Set, WarmupPace: cellOpts.WarmupPace, Tags: map[string]string{"matrix": m.Name, "cell": c.Cell.ID}}}
	if m.Restart.Namespace != "" || len(m.Restart.Deployments) > 0 || m.Restart.Selector != "" {
		r.Restart = &m.Restart
	}
	runErr := r.Run(ctx)
	if closer, ok := obs.(interface{ Close() }); ok {
		closer.Close()
	}
	end := time.Now().UTC()
	c.End = &end
	if sum, err := results.ReadSummary(filepath.Join(dir, c.RunDir)); err == nil && c.RunDir != "" {
		c.SustainedRPS = sum.SustainedRPS
		for _, p := range sum.Paces {
			fig := StepFig{
				TargetRPS: p.TargetRPS, Verdict: p.Verdict,
				PublishP99MS: p.PublishMS.P99, PublishP9999: p.PublishMS.P9999,
				E2EP99MS: measured(p.E2E(results.P99)), E2EP9999MS: measured(p.E2E(results.P9999)),
				DeliveredRPS: p.DeliveredRPS, Lost: p.Lost, SendFailures: p.SendFailures, AchievedSends: p.AchievedSendRPS,
			}
			if o := p.Resources.Observed(); o != nil {
				fig.CPUPerEventUS = o.CPUPerEventUS
			}
			c.Steps = append(c.Steps, fig)
		}
	}
	switch {
	case runErr == nil:
		c.Status = Succeeded
	case errors.As(runErr, new(*engine.ThresholdError)):
		c.Status, c.Error = Breached, runErr.Error()
	case errors.Is(runErr, engine.ErrInterrupted) || ctx.Err() != nil:
		c.Status, c.Error = Interrupted, runErr.Error()
	default:
		c.Status, c.Error = Failed, runErr.Error()
	}
	return runErr
}

// dirWatch passes a cell's progress on and learns its run directory.
type dirWatch struct {
	engine.Observer
	onStart func(string)
}

func (w *dirWatch) RunStarted(dir string, sc *scenario.Scenario) {
	w.onStart(dir)
	w.Observer.RunStarted(dir, sc)
}

// nop observes nothing.
type nop struct{}

func (nop) RunStarted(string, *scenario.Scenario)          {}
func (nop) PhaseStarted(scenario.Phase)                    {}
func (nop) StepStarted(*scenario.Step, int, time.Duration) {}
func (nop) StepFinished(*scenario.Step, engine.StepRecord) {}
func (nop) Undone(engine.UndoRecord)                       {}
func (nop) StepStatus(*scenario.Step, string)              {}
func (nop) LoadStatus(*scenario.Step, steps.LoadStatus)    {}
func (nop) Closed(engine.Closing)                          {}
func (nop) StepOutput(*scenario.Step, string)              {}
func (nop) Message(string)                                 {}

// lockTarget takes the machine-wide lock of a target, so that two matrices
// never run cells on one target at once. The lock file names its holder.
// ErrLockLost is the cause of a matrix's context when its Lease in the
// cluster was taken over: the running cell stops and tears down.
var ErrLockLost = errors.New("the matrix lost its lock on the cluster")

// lockTarget takes the target's lock; on kubernetes also a Lease in the
// cluster. The context it returns ends if that Lease is lost.
func lockTarget(ctx context.Context, opts Options, target, holder string) (context.Context, func(), error) {
	said := false
	for {
		lockCtx, unlock, err := tryLockTarget(ctx, opts, target, holder)
		if !errors.Is(err, ErrBusy) || !opts.Wait {
			return lockCtx, unlock, err
		}
		if !said && opts.Say != nil {
			fmt.Fprintf(opts.Say, "waiting: %v\n", err)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w while waiting for the target: %w", ErrInterrupted, context.Cause(ctx))
		case <-time.After(lockPoll):
		}
	}
}

// lockPoll is how often a waiting matrix tries the target's lock again.
var lockPoll = 2 * time.Second

// lockName names the lock file of a target: one per machine for local,
// whose systems share its cores; one per cluster for kubernetes, whose
// nodes cells share whatever their namespace.
func lockName(target string, cl *kube.Connection) string {
	if cl == nil {
		return "runner-matrix-" + target + ".lock"
	}
	sum := sha256.Sum256([]byte(cl.Server))
	return fmt.Sprintf("runner-matrix-%s-%x.lock", target, sum[:6])
}

// tryLockTarget takes the target's lock once, or fails with ErrBusy.
func tryLockTarget(ctx context.Context, opts Options, target, holder string) (context.Context, func(), error) {
	lockDir := opts.LockDir
	if lockDir == "" {
		lockDir = os.TempDir()
	}
	path := filepath.Join(lockDir, lockName(target, opts.Cluster))
	f, err := flock.Try(path, 0o666)
	if errors.Is(err, flock.ErrHeld) {
		who, _ := input.Read(path)
		where := target
		if opts.Cluster != nil {
			where += " " + opts.Cluster.Server
		}
		return nil, nil, fmt.Errorf("%w on target %s (%s): cells on one target never overlap", ErrBusy, where, strings.TrimSpace(string(who)))
	}
	if err != nil {
		return nil, nil, err
	}
	_ = f.Truncate(0)
	fmt.Fprintf(f, "pid %d, %s", os.Getpid(), holder)
	if opts.Cluster == nil {
		return ctx, func() { f.Close() }, nil
	}
	// Other machines reach the cluster too: the lock is a Lease in it.
	host, _ := os.Hostname()
	ctx, cancel := context.WithCancelCause(ctx)
	lost := func(err error) {
		if opts.Say != nil {
			fmt.Fprintf(opts.Say, "%v: %v; stopping\n", ErrLockLost, err)
		}
		cancel(fmt.Errorf("%w: %v", ErrLockLost, err))
	}
	unlock, err := kube.Lock(ctx, opts.Cluster, "runner-matrix", fmt.Sprintf("%s pid %d, %s", host, os.Getpid(), holder), lost)
	if err != nil {
		cancel(nil)
		f.Close()
		if errors.Is(err, kube.ErrLocked) {
			return nil, nil, fmt.Errorf("%w on target kubernetes (%v): cells on one cluster never overlap", ErrBusy, err)
		}
		return nil, nil, err
	}
	return ctx, func() { unlock(); cancel(nil); f.Close() }, nil
}

// measured returns v, or nil when it was not measured (NaN).
func measured(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// value returns *v, or NaN when it was not measured.
func value(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}
