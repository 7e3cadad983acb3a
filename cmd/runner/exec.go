package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/steps"
)

func newExecCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags scenarioFlags
	var out string
	var stepTimeout time.Duration
	var agentImage string
	var tags []string
	var failOnBroken bool
	var output outputFlags
	cmd := &cobra.Command{
		Use: "exec FILE",
		Example: `  runner exec scenarios/direct.yaml
  runner exec scenarios/channel-imc.yaml --pace 1k-2k --tag ticket=PERF-12
  runner exec scenarios/channel-imc.yaml --pace 200:10,900:10 --set capacity=400 --fail-on-broken
  runner exec scenarios/channel-imc.yaml --target kubernetes -n perf --context kind-perf
  runner exec scenarios/direct.yaml --output json --quiet | jq -c 'select(.type == "second")'`,
		Short: "Run a scenario: setup, warmup, measure, teardown, report",
		Long: `Run a scenario once and write its results under --out.

Teardown always runs: after success, after a failed or timed-out step, and
after a first interrupt (Ctrl-C or SIGTERM), which stops the current step.
A second interrupt exits at once; ` + "`runner cleanup RUN_DIR`" + ` then finishes
the teardown from the run's journal.

The run ends with a closing block: every pace step's verdict (held,
broken, generator-saturated) and why, the sustained rate, each threshold
held (✓) or not (✗) with its value, and what the exit code means. run.json
and report.md record the command line, the variables, --set and -f, the
tags and the environment (runner, Go, CPU, kernel, target).

Exit codes: 0 the run went through, 1 the run failed, 2 bad input, 3 a
threshold was breached (or, with --fail-on-broken, a pace step the
scenario expects to hold broke), 130 interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := flags.options()
			if err != nil {
				return err
			}
			if stepTimeout <= 0 {
				return badInput(fmt.Errorf("--step-timeout %s: must be positive", stepTimeout))
			}
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			if err := output.check(); err != nil {
				return err
			}
			opts.RequirePace = true
			sc, err := loadScenario(args[0], opts)
			if err != nil {
				return err
			}
			if len(sc.Provides) > 0 {
				return badInput(fmt.Errorf("%s is a platform file (it lists provides): install it with runner platform install", args[0]))
			}
			cluster, err := connect(stdout, opts.Target, flags.access)
			if err != nil {
				return err
			}
			runner := &engine.Runner{
				Scenario:     sc,
				OutDir:       out,
				Target:       opts.Target,
				Open:         opener(cluster),
				Version:      version,
				AgentImage:   agentImage,
				StepTimeout:  stepTimeout,
				CleanStale:   flags.cleanStale,
				FailOnBroken: failOnBroken,
				Context: results.RunContext{
					Command:     append([]string{"runner"}, os.Args[1:]...),
					Sets:        flags.set,
					ValuesFiles: flags.values,
					Tags:        tagMap,
				},
			}
			return execScenario(runner, cluster, output, stdout, stderr)
		},
	}
	flags.register(cmd, true)
	output.register(cmd)
	cmd.Flags().StringVar(&out, "out", "results", "the results root; a run writes to OUT/<scenario>/<pace-set>/<time>-<id>/")
	durationVar(cmd.Flags(), &stepTimeout, "step-timeout", engine.DefaultStepTimeout, "a step's timeout when neither the step nor the scenario gives one")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "attach a tag to the run: key=value (repeatable), recorded in run.json and report.md")
	cmd.Flags().BoolVar(&failOnBroken, "fail-on-broken", false, "exit 3 when a measured pace step the scenario expects to hold (mustHold) broke")
	cmd.Flags().StringVar(&agentImage, "agent-image", "", "the image of agent pods whose chart values name none (default "+charts.ImageRepository+":<this runner's version>)")
	return cmd
}

// outputFlags say how a run shows itself.
type outputFlags struct {
	quiet   bool
	noColor bool
	format  string // text or json
}

func (o *outputFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print nothing but the closing block (with --output json, nothing but the JSON)")
	cmd.Flags().BoolVar(&o.noColor, "no-color", false, "no colours in the closing block (also when NO_COLOR is set)")
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "text, or json: one JSON object per second of each load on stdout, then the ending with the summary; the progress goes to stderr")
}

func (o *outputFlags) check() error {
	if o.format != "text" && o.format != "json" {
		return badInput(fmt.Errorf("--output %q: must be text or json", o.format))
	}
	return nil
}

// progress returns the run's progress view: a live line that fits the
// terminal when stdout (stderr, with --output json) is one.
func (o outputFlags) progress(stdout, stderr io.Writer) *engine.Progress {
	human := stdout
	opts := engine.ProgressOptions{Quiet: o.quiet}
	if o.format == "json" {
		human, opts.JSON = stderr, stdout
	}
	if f, ok := human.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		opts.Live = true
		opts.Color = !o.noColor && os.Getenv("NO_COLOR") == ""
		opts.Width = func() int {
			w, _, err := term.GetSize(fd)
			if err != nil {
				return 0
			}
			return w
		}
	}
	return engine.NewProgressWith(human, opts)
}

// parseTags parses --tag key=value flags.
func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, badInput(fmt.Errorf("--tag %q: want key=value, e.g. --tag ticket=PERF-12", t))
		}
		if _, dup := out[k]; dup {
			return nil, badInput(fmt.Errorf("--tag %q: tag %q given twice", t, k))
		}
		out[k] = v
	}
	return out, nil
}

// stopSignals end a run the way Ctrl-C does: an interrupt, a terminate, a
// closed terminal (SIGHUP) and a quit.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// interruptible returns a context that the first of stopSignals cancels
// with engine.ErrInterrupted; a second exits at once, killing running
// commands, after printing the command that finishes the job (finish()).
// A closed stdout or stderr (a pipe whose reader left, `| head`) never
// kills the run: SIGPIPE is ignored, so that writes to it fail instead, and
// the run goes on to its teardown and results.
func interruptible(stderr io.Writer, finish func() string) (context.Context, func()) {
	signal.Ignore(syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, stopSignals...)
	go func() {
		sig, ok := <-signals
		if !ok {
			return
		}
		fmt.Fprintf(stderr, "\n%s: stopping the current step and tearing down; interrupt again to exit at once\n", sig)
		cancel(engine.ErrInterrupted)
		sig, ok = <-signals
		if !ok {
			return
		}
		fmt.Fprintf(stderr, "\n%s again: exiting without finishing teardown; finish it with: %s\n", sig, finish())
		steps.KillRunning()
		os.Exit(exitInterrupted)
	}()
	return ctx, func() {
		signal.Stop(signals)
		close(signals)
		cancel(nil)
	}
}

// clusterFlags are the flags that reach cl again, for a command printed to
// be run later.
func clusterFlags(cl *kube.Connection) string {
	if cl == nil {
		return ""
	}
	flags := " --context " + cl.Context
	if cl.Kubeconfig != "" {
		if abs, err := filepath.Abs(cl.Kubeconfig); err == nil {
			flags = " --kubeconfig " + abs + flags
		}
	}
	return flags
}

// execScenario runs runner with progress on stdout; cl is its cluster on
// kubernetes, for the cleanup command printed on a second interrupt.
func execScenario(runner *engine.Runner, cl *kube.Connection, out outputFlags, stdout, stderr io.Writer) error {
	progress := out.progress(stdout, stderr)
	runner.Observer = progress

	ctx, stop := interruptible(stderr, func() string { return "runner cleanup " + runner.Dir() + clusterFlags(cl) })
	defer stop()

	err := runner.Run(ctx)
	progress.Close()
	dir := runner.Dir()
	code := engine.ExitCode(err)
	switch {
	case dir == "":
		return &exitError{code: exitFailed, err: err}
	case err == nil:
		return nil
	case code == exitThreshold:
		// The closing block said which, on stdout; stderr says it too, for
		// a script that reads stdout elsewhere.
		return &exitError{code: code, err: fmt.Errorf("%v\nresults in %s", err, dir)}
	case code == exitInterrupted:
		return &exitError{code: code, err: fmt.Errorf("%v\nrun interrupted; results in %s", err, dir)}
	case code == exitBadInput:
		return &exitError{code: code, err: fmt.Errorf("%v\nresults in %s", err, dir)}
	}
	return &exitError{code: code, err: fmt.Errorf("%v\nrun failed; results in %s", err, dir)}
}
