package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/matrix"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/target"
)

// matrixFlags are the flags of matrix and schedule.
type matrixFlags struct {
	target       string
	paceOverride string
	keepWarmup   bool
	wait         bool
	out          string
	stepTimeout  time.Duration
	agentImage   string
	lockDir      string
	access       kube.Access
}

func (f *matrixFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.target, "target", "", "where the cells run: local or kubernetes (default: the matrix file's target, else local)")
	cmd.Flags().StringVar(&f.paceOverride, "pace-override", "", "a pace every cell runs instead of its pace sets' (e.g. 500:2), its warmups too unless --keep-warmup; the cells are named after it (pace-500x2)")
	cmd.Flags().BoolVar(&f.keepWarmup, "keep-warmup", false, "with --pace-override: the warmups keep their own pace")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "when another matrix holds the target (this machine for local, the cluster for kubernetes), wait for it to end instead of refusing")
	cmd.Flags().StringVar(&f.out, "out", "results", "the results root; a matrix writes to OUT/matrix/<name>/<time>-<id>/")
	durationVar(cmd.Flags(), &f.stepTimeout, "step-timeout", engine.DefaultStepTimeout, "a step's timeout when neither the step nor the scenario gives one")
	cmd.Flags().StringVar(&f.agentImage, "agent-image", "", "the image of agent pods whose chart values name none (default "+charts.ImageRepository+":<this runner's version>)")
	cmd.Flags().StringVar(&f.lockDir, "lock-dir", "", "where the per-target lock lives (default: the system's temporary directory)")
	_ = cmd.Flags().MarkHidden("lock-dir")
	registerAccess(cmd, &f.access, "with target kubernetes")
}

func (f *matrixFlags) check() error {
	if _, err := target.ParseKind(f.target); err != nil {
		return badInput(fmt.Errorf("--%w", err))
	}
	if f.paceOverride != "" {
		if _, err := pace.Parse(f.paceOverride); err != nil {
			return badInput(fmt.Errorf("--pace-override: %w", err))
		}
	}
	if f.keepWarmup && f.paceOverride == "" {
		return badInput(errors.New("--keep-warmup applies only with --pace-override"))
	}
	if f.stepTimeout <= 0 {
		return badInput(fmt.Errorf("--step-timeout %s: must be positive", f.stepTimeout))
	}
	return nil
}

func (f *matrixFlags) options(stdout io.Writer) matrix.Options {
	return matrix.Options{
		Out: f.out, PaceOverride: f.paceOverride, Version: version, AgentImage: f.agentImage, StepTimeout: f.stepTimeout, Say: stdout, LockDir: f.lockDir, Wait: f.wait,
		Command:  append([]string{"runner"}, os.Args[1:]...),
		Observer: func(matrix.CellResult) engine.Observer { return engine.NewProgress(stdout, false) },
	}
}

func newMatrixCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags matrixFlags
	var resume string
	cmd := &cobra.Command{
		Use: "matrix FILE | matrix --resume DIR",
		Example: `  runner matrix scenarios/matrix-2019.yaml
  runner matrix scenarios/matrix-2019.yaml --pace-override 500:2   # every cell briefly
  runner matrix --resume results/matrix/matrix-2019/20261201T020000Z-1a2b3c`,
		Short: "Run every cell of a matrix (scenarios × paces × values × repetitions), one after another",
		Long: `Run every cell of a matrix file one after another, each with its scenario's
own setup and teardown, so that every cell gets freshly installed systems.
A failed cell is recorded and the matrix goes on. The matrix directory holds
index.json (every cell's status and figures), summary.md (the spread over
repetitions, and which differences exceed it) and graphs across cells.

--resume DIR runs what a killed or interrupted matrix left: cells done are
skipped, a cell that was running is cleaned up from its journal and run
again. A lock keeps two matrices off one target.

Exit codes: 0 every cell succeeded, 1 a cell failed, 2 bad input, 3 a
cell breached a threshold, 130 interrupted.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if resume != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.check(); err != nil {
				return err
			}
			ctx, stop := interruptible(stderr, func() string { return "runner matrix --resume <the matrix directory above>" })
			defer stop()
			var (
				dir string
				ix  *matrix.Index
				err error
			)
			if resume != "" {
				if flags.paceOverride != "" || flags.target != "" || flags.keepWarmup {
					return badInput(errors.New("--resume runs the matrix as it was started: --pace-override, --keep-warmup and --target cannot change it"))
				}
				old, rerr := matrix.ReadIndex(resume)
				if rerr != nil {
					return badInput(rerr)
				}
				opts := flags.options(stdout)
				if opts.Cluster, err = connect(stdout, target.Kind(old.Target), flags.access); err != nil {
					return err
				}
				opts.Open = opener(opts.Cluster)
				dir = resume
				fmt.Fprintf(stdout, "resuming matrix %s\n", dir)
				ix, err = matrix.Resume(ctx, dir, opts)
			} else {
				m, lerr := matrix.Load(args[0], flags.target)
				if lerr != nil {
					return badInput(lerr)
				}
				if err := refuseClusterFlags(cmd, target.Kind(m.Target)); err != nil {
					return err
				}
				m.KeepWarmup = flags.keepWarmup
				opts := flags.options(stdout)
				if opts.Cluster, err = connect(stdout, target.Kind(m.Target), flags.access); err != nil {
					return err
				}
				opts.Open = opener(opts.Cluster)
				fmt.Fprintf(stdout, "matrix %s: %d cells on %s\n", m.Name, len(m.Cells(flags.paceOverride)), m.Target)
				dir, ix, err = matrix.Start(ctx, m, opts)
			}
			return matrixOutcome(stdout, dir, ix, err)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&resume, "resume", "", "a matrix directory to finish")
	return cmd
}

// matrixOutcome maps a matrix's result to the exit code.
func matrixOutcome(stdout io.Writer, dir string, ix *matrix.Index, err error) error {
	switch {
	case errors.Is(err, matrix.ErrInterrupted):
		return &exitError{code: exitInterrupted, err: fmt.Errorf("matrix interrupted; finish it with: runner matrix --resume %s", dir)}
	case errors.Is(err, matrix.ErrBusy):
		return &exitError{code: exitBadInput, err: err}
	case err != nil && ix == nil:
		return &exitError{code: exitFailed, err: err}
	case err != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("%v\nmatrix in %s", err, dir)}
	}
	failed, breached := 0, 0
	for _, c := range ix.Cells {
		switch c.Status {
		case matrix.Failed, matrix.Interrupted:
			failed++
		case matrix.Breached:
			breached++
		}
	}
	summary := filepath.Join(dir, matrix.SummaryFile)
	switch {
	case failed > 0:
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d cells failed; summary in %s", failed, len(ix.Cells), summary)}
	case breached > 0:
		return &exitError{code: exitThreshold, err: fmt.Errorf("%d of %d cells breached thresholds; summary in %s", breached, len(ix.Cells), summary)}
	}
	fmt.Fprintf(stdout, "all %d cells succeeded; summary in %s\n", len(ix.Cells), summary)
	return nil
}

func newScheduleCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags matrixFlags
	var spec string
	cmd := &cobra.Command{
		Use:     "schedule FILE --cron SPEC",
		Example: `  runner schedule scenarios/matrix-2019.yaml --cron "0 2 * * *"   # every night at 02:00`,
		Short:   "Run a matrix on a cron schedule, never two at once",
		Long: `Run a matrix file on a cron schedule (five fields, as cron: "0 3 * * *"
is 03:00 every day; or @hourly, @daily, @every 6h). A run that comes due
while the last is still going is skipped, and the skip is said. SIGTERM or
Ctrl-C stops the schedule; a matrix running then tears its cell down and
writes its index, as runner matrix does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := flags.check(); err != nil {
				return err
			}
			if _, err := matrix.ParseSchedule(spec); err != nil {
				return badInput(err)
			}
			if _, err := matrix.Load(args[0], flags.target); err != nil {
				return badInput(err)
			}
			ctx, stop := interruptible(stderr, func() string { return "runner matrix --resume <the matrix directory above>" })
			defer stop()
			s := &matrix.Scheduler{
				Spec: spec,
				Say: func(line string) {
					fmt.Fprintf(stdout, "%s schedule: %s\n", time.Now().UTC().Format(time.RFC3339), line)
				},
				Job: func(ctx context.Context) error {
					// The file is read again each time, so edits apply
					// to the next run.
					m, err := matrix.Load(args[0], flags.target)
					if err != nil {
						return err
					}
					m.KeepWarmup = flags.keepWarmup
					dir, ix, err := matrix.Start(ctx, m, flags.options(stdout))
					return matrixOutcome(stdout, dir, ix, err)
				},
			}
			return s.Run(ctx)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&spec, "cron", "", "the schedule, e.g. \"0 3 * * *\"")
	_ = cmd.MarkFlagRequired("cron")
	return cmd
}

func newHistoryCommand(stdout io.Writer) *cobra.Command {
	var (
		check     bool
		last      int
		baseline  string
		tolerance string
		out       string
	)
	cmd := &cobra.Command{
		Use: "history RESULTS_DIR",
		Example: `  runner history results
  runner history results --check --last 5 --tolerance 10%`,
		Short: "List past runs per scenario and pace set, graph their trend, and check the newest for regressions",
		Long: `List every run under RESULTS_DIR (matrix cells included) per scenario,
pace set and target, and write history.md and a trend graph (trend.gp,
rendered to trend.png) of sustained rate and p99.99 end-to-end latency over
time to --out.

With --check, compare the newest run of each scenario and pace set with its
baseline — the median of the --last previous runs, or the run given with
--baseline — and exit 3 when its sustained rate fell, or its p99.99
end-to-end latency rose, by more than --tolerance.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tol, err := parseTolerance(tolerance)
			if err != nil {
				return badInput(err)
			}
			if last < 1 {
				return badInput(fmt.Errorf("--last %d: must be at least 1", last))
			}
			runs, err := matrix.History(args[0])
			if err != nil {
				return badInput(err)
			}
			if len(runs) == 0 {
				return badInput(fmt.Errorf("no finished runs under %s", args[0]))
			}
			if out == "" {
				out = filepath.Join(args[0], "history")
			}
			table, _, err := matrix.WriteHistory(out, runs)
			if err != nil {
				// The table and the data are written; a graph that did
				// not render loses nothing.
				fmt.Fprintf(stdout, "trend graph: %v\n", err)
			}
			if !check {
				fmt.Fprint(stdout, table)
				fmt.Fprintf(stdout, "history and trend graph in %s\n", out)
				return nil
			}
			if baseline != "" {
				if _, err := engine.ReadRunRecord(baseline); err != nil {
					return badInput(fmt.Errorf("--baseline %s is not a run directory: %w", baseline, err))
				}
				if _, ok := matrix.Find(runs, baseline); !ok {
					return badInput(fmt.Errorf("--baseline %s is not among the finished runs under %s", baseline, args[0]))
				}
			}
			regs, notes := matrix.Check(runs, last, baseline, tol)
			for _, n := range notes {
				fmt.Fprintln(stdout, n)
			}
			if len(regs) == 0 {
				fmt.Fprintf(stdout, "no regression beyond %s\n", tolerance)
				return nil
			}
			lines := make([]string, len(regs))
			for i, r := range regs {
				lines[i] = "regression: " + r.String()
			}
			return &exitError{code: exitThreshold, err: errors.New(strings.Join(lines, "\n"))}
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "compare the newest run of each scenario and pace set with its baseline; exit 3 on a regression")
	cmd.Flags().IntVar(&last, "last", 5, "the baseline is the median of this many previous runs")
	cmd.Flags().StringVar(&baseline, "baseline", "", "a run directory to compare with instead")
	cmd.Flags().StringVar(&tolerance, "tolerance", "10%", "how much worse a figure may be")
	cmd.Flags().StringVar(&out, "out", "", "where history.md and the trend graph go (default RESULTS_DIR/history)")
	return cmd
}
