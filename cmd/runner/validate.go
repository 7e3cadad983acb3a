package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/matrix"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/target"
)

func newValidateCommand(stdout io.Writer) *cobra.Command {
	var flags scenarioFlags
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario and matrix files and report every problem with its file:line:column",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := flags.options()
			if err != nil {
				return err
			}
			var problems []string
			for _, file := range args {
				if isMatrixFile(file) {
					if _, err := matrix.Load(file, ""); err != nil {
						problems = append(problems, err.Error())
						continue
					}
					fmt.Fprintf(stdout, "%s: ok (matrix)\n", file)
					continue
				}
				sc, err := scenario.Load(file, opts)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				// The platforms it requires must be platform files.
				if _, _, err := sc.Requirements(); err != nil {
					problems = append(problems, file+": "+err.Error())
					continue
				}
				fmt.Fprintf(stdout, "%s: ok\n", file)
			}
			if len(problems) > 0 {
				return badInput(errors.New(strings.Join(problems, "\n")))
			}
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

// isMatrixFile reports whether file is a matrix file: a mapping with a
// scenarios key.
func isMatrixFile(file string) bool {
	src, err := input.Read(file)
	if err != nil {
		return false
	}
	root, err := strictyaml.Parse(file, src)
	if err != nil {
		return false
	}
	key, _ := strictyaml.FieldNode(root, "scenarios")
	return key != nil
}

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var flags scenarioFlags
	var stepTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Print the resolved steps and the pace schedule, changing nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := flags.options()
			if err != nil {
				return err
			}
			opts.RequirePace = true
			sc, err := loadScenario(args[0], opts)
			if err != nil {
				return err
			}
			printPlan(stdout, sc, opts.Target, stepTimeout)
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().DurationVar(&stepTimeout, "step-timeout", engine.DefaultStepTimeout, "a step's timeout when neither the step nor the scenario gives one")
	return cmd
}

func printPlan(w io.Writer, sc *scenario.Scenario, kind target.Kind, stepTimeout time.Duration) {
	fmt.Fprintf(w, "scenario %s (%s), target %s\n", sc.Name, sc.File, kind)
	if sc.Description != "" {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(sc.Description))
	}
	for _, phase := range scenario.Phases {
		list := sc.Steps[phase]
		noun := "steps"
		if len(list) == 1 {
			noun = "step"
		}
		fmt.Fprintf(w, "\n%s (%d %s)\n", phase, len(list), noun)
		for _, s := range list {
			timeout := s.Timeout
			if timeout == 0 {
				timeout = sc.Defaults.Timeout
			}
			if timeout == 0 {
				timeout = stepTimeout
			}
			fmt.Fprintf(w, "  %-28s %-8s timeout %-8v retries %d  %s\n", s.Name, s.Kind, timeout, s.Retries, s.Pos)
		}
	}
	fmt.Fprintln(w)
	if len(sc.Pace.Steps) == 0 {
		fmt.Fprintln(w, "pace: none")
		return
	}
	fmt.Fprintf(w, "pace %s: %s\n", sc.Pace.Name, sc.Pace.Spec)
	fmt.Fprintf(w, "  %4s %10s %10s %12s %12s\n", "step", "rps", "duration", "events", "starts at")
	var at time.Duration
	for i, st := range sc.Pace.Steps {
		fmt.Fprintf(w, "  %4d %10g %10s %12d %12s\n", i+1, st.RPS, st.Duration, st.Events(), at)
		at += st.Duration
	}
	fmt.Fprintf(w, "  total: %d events over %s\n", sc.Pace.Events(), sc.Pace.Duration())
}

func newCleanupCommand(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	var access kube.Access
	cmd := &cobra.Command{
		Use:   "cleanup RUN_DIR",
		Short: "Finish the teardown of a run whose process was killed, from its journal",
		Long: `Finish the teardown of a run whose process was killed: undo every resource
its journal still holds, newest first. For a run on kubernetes, give the
cluster as exec was given it (--kubeconfig, --context); it must be the
server the run used, and after the journal every object still carrying the
run's label (runner.perf/run-id) is deleted, namespaces last.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return badInput(fmt.Errorf("--timeout %s: must be positive", timeout))
			}
			rec, err := engine.ReadRunRecord(args[0])
			if err != nil {
				return badInput(fmt.Errorf("%s is not a run directory: %w", args[0], err))
			}
			cluster, err := connect(stdout, target.Kind(rec.Target), access)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			progress := engine.NewProgress(stdout, false)
			done, err := engine.Cleanup(ctx, args[0], progress, opener(cluster))
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("cleanup %s: %w", args[0], err)}
			}
			if len(done) == 0 {
				fmt.Fprintf(stdout, "%s: nothing left to undo\n", args[0])
				return nil
			}
			fmt.Fprintf(stdout, "%s: undid %d resources\n", args[0], len(done))
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", engine.DefaultTeardownTimeout, "how long the cleanup may take")
	registerAccess(cmd, &access)
	return cmd
}
