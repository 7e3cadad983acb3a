package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/target"
)

func newPlatformCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "platform",
		Short: "Install, check or remove what many runs share on a cluster (Knative, Kafka)",
		Long: `A platform file is written in the scenario language: setup installs the
platform, teardown removes it, and provides lists checks of what it
installs. What a platform installs carries the label runner.perf/platform=
<name> instead of a run's: runs never sweep it nor count it as an unfinished
run's. A scenario names the platforms it needs under requires:, and a run
on --target kubernetes checks them before its setup.

Exit codes: 0 success (status: everything provided), 1 failed, 2 bad input
(status: something is missing), 130 interrupted.`,
		Example: `  runner platform install scenarios/platform/knative-eventing.yaml --target kubernetes
  runner platform status scenarios/platform/knative-eventing.yaml --target kubernetes
  runner platform uninstall scenarios/platform/knative-eventing.yaml --target kubernetes`,
	}
	cmd.AddCommand(
		newPlatformRunCommand(stdout, stderr, engine.PlatformInstall, "Install a platform: run its setup, then check its provides; on failure, remove what was installed"),
		newPlatformRunCommand(stdout, stderr, engine.PlatformUninstall, "Remove a platform: run its teardown, then delete whatever carries its label"),
		newPlatformStatusCommand(stdout),
	)
	return cmd
}

// loadPlatform loads a platform file for --target kubernetes and reaches
// the cluster.
func loadPlatform(stdout io.Writer, file string, flags *scenarioFlags) (*scenario.Scenario, *kube.Connection, error) {
	opts, err := flags.options()
	if err != nil {
		return nil, nil, err
	}
	if opts.Target != target.Kubernetes {
		return nil, nil, badInput(fmt.Errorf("a platform is installed in a cluster: give --target kubernetes"))
	}
	if opts.Pace != "" {
		return nil, nil, badInput(fmt.Errorf("--pace: a platform file has no load"))
	}
	sc, err := loadScenario(file, opts)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case len(sc.Provides) == 0:
		return nil, nil, badInput(fmt.Errorf("%s: not a platform file: it lists no provides (a scenario is run with runner exec)", file))
	case len(sc.Steps[scenario.Warmup])+len(sc.Steps[scenario.Measure])+len(sc.Steps[scenario.Report]) > 0:
		return nil, nil, badInput(fmt.Errorf("%s: a platform file has setup and teardown only, no warmup, measure or report", file))
	case len(sc.Requires) > 0:
		return nil, nil, badInput(fmt.Errorf("%s: a platform file provides; it requires nothing", file))
	}
	cluster, err := connect(stdout, opts.Target, flags.access)
	return sc, cluster, err
}

func newPlatformRunCommand(stdout, stderr io.Writer, action engine.PlatformAction, short string) *cobra.Command {
	var flags scenarioFlags
	var out string
	var stepTimeout time.Duration
	cmd := &cobra.Command{
		Use:     string(action) + " FILE",
		Example: "  runner platform " + string(action) + " scenarios/platform/knative-eventing.yaml --target kubernetes --context kind-perf",
		Short:   short,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, cluster, err := loadPlatform(stdout, args[0], &flags)
			if err != nil {
				return err
			}
			runner := &engine.Runner{
				Scenario:    sc,
				OutDir:      out,
				Target:      target.Kubernetes,
				Open:        opener(cluster),
				Version:     version,
				StepTimeout: stepTimeout,
				Platform:    action,
			}
			if err := execScenario(runner, cluster, outputFlags{format: "text"}, stdout, stderr); err != nil {
				return err
			}
			if action == engine.PlatformInstall {
				fmt.Fprintf(stdout, "platform %s is installed (record in %s); remove it with: runner platform uninstall %s --target kubernetes%s\n", sc.Name, runner.Dir(), args[0], clusterFlags(cluster))
			} else {
				fmt.Fprintf(stdout, "platform %s is removed (record in %s)\n", sc.Name, runner.Dir())
			}
			return nil
		},
	}
	flags.register(cmd, true)
	cmd.Flags().StringVar(&out, "out", "results", "where the install's or uninstall's log, journal and record go: OUT/<platform>/platform-"+string(action)+"/<time>-<id>/")
	durationVar(cmd.Flags(), &stepTimeout, "step-timeout", engine.DefaultStepTimeout, "a step's timeout when neither the step nor the file gives one")
	return cmd
}

func newPlatformStatusCommand(stdout io.Writer) *cobra.Command {
	var flags scenarioFlags
	cmd := &cobra.Command{
		Use:     "status FILE",
		Example: "  runner platform status scenarios/platform/knative-eventing.yaml --target kubernetes",
		Short:   "Check, once, whether a cluster holds everything a platform provides",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, cluster, err := loadPlatform(stdout, args[0], &flags)
			if err != nil {
				return err
			}
			t, err := kube.NewPlatformTarget(cluster, sc.Name, slog.New(slog.DiscardHandler))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			records, ok := engine.CheckPlatform(ctx, t, sc)
			for _, rec := range records {
				if rec.OK {
					fmt.Fprintf(stdout, "✓ %s\n", rec.Check)
				} else {
					fmt.Fprintf(stdout, "✗ %s: %s\n", rec.Check, rec.Found)
				}
			}
			if !ok {
				return &exitError{code: exitBadInput, err: errors.New("platform " + sc.Name + " is not (wholly) installed; install it with: runner platform install " + args[0] + " --target kubernetes" + clusterFlags(cluster))}
			}
			fmt.Fprintf(stdout, "platform %s provides everything it lists\n", sc.Name)
			return nil
		},
	}
	flags.register(cmd, true)
	return cmd
}
