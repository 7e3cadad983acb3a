package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/input"
	"github.com/perfrunner/runner/internal/redact"
	"github.com/perfrunner/runner/internal/strictyaml"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/matrix"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/target"
)

func newValidateCommand(stdout io.Writer) *cobra.Command {
	var flags scenarioFlags
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR...",
		Short: "Check scenario and matrix files and report every problem with its file:line:column",
		Long: `Check scenario, platform and matrix files, and report every problem in
every file in one pass, each as file:line:column: message. A directory
stands for every scenario, platform and matrix file (.yaml, .yml) under
it; other YAML files there (a chart's values) are left out. Exit 0 means a run will
start: nothing is installed or run.`,
		Example: `  runner validate scenarios/channel-imc.yaml
  runner validate scenarios/
  runner validate my.yaml --target kubernetes --set replicas=3`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := flags.options()
			if err != nil {
				return err
			}
			if args, err = expandDirs(args); err != nil {
				return badInput(err)
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
	flags.register(cmd, false)
	return cmd
}

// expandDirs replaces each directory among args with the YAML files
// under it, in order, leaving out hidden files and directories.
func expandDirs(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil || !info.IsDir() {
			out = append(out, arg) // a missing file is the loader's to report
			continue
		}
		var found []string
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case path != arg && strings.HasPrefix(d.Name(), "."):
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			case !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) && runnerFile(path):
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .yaml or .yml file in the directory", arg)
		}
		out = append(out, found...)
	}
	return out, nil
}

// hasTopKey reports whether file is a YAML mapping with one of keys at
// its top level; ok is false when it cannot be read or parsed.
func hasTopKey(file string, keys ...string) (has, ok bool) {
	src, err := input.Read(file)
	if err != nil {
		return false, false
	}
	root, err := strictyaml.Parse(file, src)
	if err != nil {
		return false, false
	}
	for _, key := range keys {
		if k, _ := strictyaml.FieldNode(root, key); k != nil {
			return true, true
		}
	}
	return false, true
}

// runnerFile reports whether file looks like one of the runner's own (a
// scenario, platform or matrix file) rather than, say, a chart's values
// file beside them; a file that does not read or parse is the loader's to
// report.
func runnerFile(file string) bool {
	has, ok := hasTopKey(file, "name", "scenarios", "setup", "measure", "provides")
	return has || !ok
}

// isMatrixFile reports whether file is a matrix file: a mapping with a
// scenarios key.
func isMatrixFile(file string) bool {
	has, _ := hasTopKey(file, "scenarios")
	return has
}

func newPlanCommand(stdout io.Writer) *cobra.Command {
	var flags scenarioFlags
	var stepTimeout time.Duration
	var paceOverride string
	var keepWarmup bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Print what a run (or a matrix) would do and how long it would take, changing nothing",
		Long: `Print what runner exec would do with a scenario, changing nothing: its
variables as resolved (those given with --set or -f marked), thresholds,
every step of every phase with its timeout and retries, each warmup's and
load's pace, the pace schedule, and the wall time of the loads with their
drains. Of a matrix file: every cell in the order it runs, with its pace
and when it would start, and the whole matrix's load time.`,
		Example: `  runner plan scenarios/channel-imc.yaml --pace 1k-2k
  runner plan scenarios/direct.yaml --pace 500:10,1000:10 --set payloadBytes=1024
  runner plan scenarios/matrix-2019.yaml --pace-override 500:2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := flags.options()
			if err != nil {
				return err
			}
			if isMatrixFile(args[0]) {
				if flags.pace != "" || len(flags.set) > 0 || len(flags.values) > 0 {
					return badInput(errors.New("a matrix file gives its cells' paces and values: --pace, --set and -f do not apply (--pace-override does)"))
				}
				m, err := matrix.Load(args[0], flags.target)
				if err != nil {
					return badInput(err)
				}
				m.KeepWarmup = keepWarmup
				return printMatrixPlan(stdout, m, paceOverride)
			}
			if paceOverride != "" || keepWarmup {
				return badInput(errors.New("--pace-override and --keep-warmup apply to matrix files; give a scenario's pace with --pace"))
			}
			opts.RequirePace = true
			sc, err := loadScenario(args[0], opts)
			if err != nil {
				return err
			}
			printPlan(stdout, sc, opts, stepTimeout)
			return nil
		},
	}
	flags.register(cmd, false)
	durationVar(cmd.Flags(), &stepTimeout, "step-timeout", engine.DefaultStepTimeout, "a step's timeout when neither the step nor the scenario gives one")
	cmd.Flags().StringVar(&paceOverride, "pace-override", "", "of a matrix file: the pace every cell would run (as runner matrix --pace-override)")
	cmd.Flags().BoolVar(&keepWarmup, "keep-warmup", false, "of a matrix file, with --pace-override: the warmups keep their own pace")
	return cmd
}

// loadPlan is the time a scenario's loads take: the warmups' and the
// measured loads' paces, sleeps, and the longest their drains may take.
type loadPlan struct {
	warmup, measure, sleeps, drains time.Duration
}

func (p loadPlan) least() time.Duration { return p.warmup + p.measure + p.sleeps }

func (p loadPlan) String() string {
	s := fmt.Sprintf("%s of load (warmup %s, measure %s)", p.least(), p.warmup, p.measure)
	if p.sleeps > 0 {
		s = fmt.Sprintf("%s of load and waits (warmup %s, measure %s, sleeps %s)", p.least(), p.warmup, p.measure, p.sleeps)
	}
	if p.drains > 0 {
		s += fmt.Sprintf(", and up to %s of drains after the loads: %s to %s, setup and teardown besides", p.drains, p.least(), p.least()+p.drains)
	}
	return s
}

// planLoads adds up a scenario's loads; it also returns each step's pace
// (spec and events) for the step list.
func planLoads(sc *scenario.Scenario) (loadPlan, map[*scenario.Step]string) {
	var p loadPlan
	paces := map[*scenario.Step]string{}
	for _, phase := range []scenario.Phase{scenario.Warmup, scenario.Measure} {
		for _, st := range sc.Steps[phase] {
			switch spec := st.Spec.(type) {
			case *steps.Load:
				ps, drain, err := spec.Plan(sc.Pace.Steps)
				if err != nil {
					paces[st] = "pace: " + err.Error()
					continue
				}
				pc := pace.Pace{Steps: ps}
				paces[st] = fmt.Sprintf("%s: %d events over %s", paceSpec(ps), pc.Events(), pc.Duration())
				if phase == scenario.Warmup {
					p.warmup += pc.Duration()
				} else {
					p.measure += pc.Duration()
				}
				p.drains += drain
			case *steps.Sleep:
				p.sleeps += spec.Duration
			}
		}
	}
	return p, paces
}

// paceSpec writes steps as a pace spec: 500:2s,1000:2s.
func paceSpec(ps []pace.Step) string {
	parts := make([]string, len(ps))
	for i, st := range ps {
		parts[i] = fmt.Sprintf("%g:%s", st.RPS, st.Duration)
	}
	return strings.Join(parts, ",")
}

func printPlan(w io.Writer, sc *scenario.Scenario, opts scenario.Options, stepTimeout time.Duration) {
	fmt.Fprintf(w, "scenario %s (%s), target %s\n", sc.Name, sc.File, opts.Target)
	if sc.Description != "" {
		fmt.Fprintf(w, "  %s\n", strings.Join(strings.Fields(sc.Description), " "))
	}
	if len(sc.Vars) > 0 {
		given := map[string]string{}
		for _, kv := range opts.Set {
			k, _, _ := strings.Cut(kv, "=")
			given[strings.Split(k, ".")[0]] = "--set"
		}
		fmt.Fprintf(w, "\nvariables\n")
		keys := slices.Sorted(maps.Keys(sc.Vars))
		width := 0
		for _, k := range keys {
			width = max(width, len(k))
		}
		for _, k := range keys {
			v := redact.Value(sc.Vars[k])
			if v == "" {
				v = `""`
			}
			line := fmt.Sprintf("  %-*s  %v", width, k, v)
			if src := given[k]; src != "" {
				line += "  (" + src + ")"
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
		if len(opts.ValuesFiles) > 0 {
			fmt.Fprintf(w, "  (values files: %s)\n", strings.Join(opts.ValuesFiles, ", "))
		}
	}
	if len(sc.Thresholds) > 0 {
		fmt.Fprintf(w, "\nthresholds (a breach exits 3)\n")
		for _, t := range sc.Thresholds {
			fmt.Fprintf(w, "  %s\n", t.Text)
		}
	}
	if sc.MustHold > 0 {
		fmt.Fprintf(w, "\nwith --fail-on-broken, the measured steps at or below %g/s must hold\n", sc.MustHold)
	}
	loads, paces := planLoads(sc)
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
			fmt.Fprintf(w, "  %-28s %-14s timeout %-8v retries %d  %s\n", s.Name, s.Kind, timeout, s.Retries, s.Pos)
			if p := paces[s]; p != "" {
				fmt.Fprintf(w, "  %-28s pace %s\n", "", p)
			}
		}
	}
	fmt.Fprintln(w)
	if len(sc.Pace.Steps) == 0 {
		fmt.Fprintln(w, "pace: none")
	} else {
		fmt.Fprintf(w, "pace %s: %s\n", sc.Pace.Name, sc.Pace.Spec)
		fmt.Fprintf(w, "  %4s %10s %10s %12s %12s\n", "step", "rps", "duration", "events", "starts at")
		var at time.Duration
		for i, st := range sc.Pace.Steps {
			fmt.Fprintf(w, "  %4d %10g %10s %12d %12s\n", i+1, st.RPS, st.Duration, st.Events(), at)
			at += st.Duration
		}
		fmt.Fprintf(w, "  total: %d events over %s\n", sc.Pace.Events(), sc.Pace.Duration())
	}
	fmt.Fprintf(w, "\nwall time: %s\n", loads)
}

// printMatrixPlan prints a matrix's cells in the order they run, each with
// its pace and load time and when it would start, and the whole matrix's.
func printMatrixPlan(w io.Writer, m *matrix.Matrix, override string) error {
	cells := m.Cells(override)
	fmt.Fprintf(w, "matrix %s (%s), target %s: %d cells, one after another, each on freshly installed systems\n", m.Name, m.Path, m.Target, len(cells))
	if override != "" {
		warm := "its warmups too"
		if m.KeepWarmup {
			warm = "the warmups keeping their own"
		}
		fmt.Fprintf(w, "  every cell runs the pace %s instead of its set's, %s\n", override, warm)
	}
	fmt.Fprintf(w, "\n  %3s  %-40s %-26s %10s %13s\n", "#", "cell", "pace", "load", "starts after")
	var total loadPlan
	for i, c := range cells {
		sc, err := scenario.Load(c.File, m.CellOptions(c))
		if err != nil {
			return badInput(fmt.Errorf("cell %s: %w", c.ID, err))
		}
		p, _ := planLoads(sc)
		paceText := fmt.Sprintf("%s (%d steps)", sc.Pace.Name, len(sc.Pace.Steps))
		if len(sc.Pace.Steps) == 1 {
			paceText = sc.Pace.Name + " (1 step)"
		}
		fmt.Fprintf(w, "  %3d  %-40s %-26s %10s %13s\n", i+1, c.ID, paceText, p.least(), total.least())
		total.warmup += p.warmup
		total.measure += p.measure
		total.sleeps += p.sleeps
		total.drains += p.drains
	}
	fmt.Fprintf(w, "\nwall time: %s\n", total)
	return nil
}

func newCleanupCommand(stdout io.Writer) *cobra.Command {
	var timeout time.Duration
	var access kube.Access
	cmd := &cobra.Command{
		Use: "cleanup RUN_DIR",
		Example: `  runner cleanup results/channel-imc/1k-2k/20261201T101500Z-1a2b3c
  runner cleanup RUN_DIR --kubeconfig ~/.kube/config --context kind-perf`,
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
	durationVar(cmd.Flags(), &timeout, "timeout", engine.DefaultTeardownTimeout, "how long the cleanup may take")
	registerAccess(cmd, &access, "for a run on kubernetes")
	return cmd
}
