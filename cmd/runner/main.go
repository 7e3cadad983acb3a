// Command runner runs declarative benchmark scenarios against event-driven
// data planes: it installs the systems under test, warms them up, drives
// paced load, measures, tears everything down and writes the results.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/matrix"
	"github.com/perfrunner/runner/scenario"
	_ "github.com/perfrunner/runner/steps" // registers the step kinds
	"github.com/perfrunner/runner/target"
	"github.com/perfrunner/runner/twins"
)

// Exit codes, as documented in the README.
const (
	exitOK          = engine.ExitOK
	exitFailed      = engine.ExitFailed
	exitBadInput    = engine.ExitBadInput
	exitThreshold   = engine.ExitThreshold
	exitInterrupted = engine.ExitInterrupted
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Agents of this build must report the same version.
func init() { agent.Stamp = version }

// exitError carries the process exit code for an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func badInput(err error) error { return &exitError{code: exitBadInput, err: err} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	// Errors from cobra itself are about flags and arguments.
	fmt.Fprintf(stderr, "error: %v\n", err)
	return exitBadInput
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "runner",
		Short:         "Declarative benchmark runner for event-driven data planes",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		Example: `  runner exec scenarios/direct.yaml                  # a run on the embedded systems
  runner plan scenarios/channel-imc.yaml --pace 1k-2k  # what a run would do, and how long
  runner validate scenarios/                         # every problem of every file
  runner compare results/direct/smoke/A results/direct/smoke/B`,
	}
	root.SetVersionTemplate(versionText())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newExecCommand(stdout, stderr),
		newValidateCommand(stdout),
		newPlanCommand(stdout),
		newCleanupCommand(stdout),
		newPlotCommand(stdout),
		newCompareCommand(stdout),
		newMatrixCommand(stdout, stderr),
		newScheduleCommand(stdout, stderr),
		newHistoryCommand(stdout),
		newSchemaCommand(stdout),
		newVersionCommand(stdout),
		newAgentCommand(stdout, stderr),
		newPlatformCommand(stdout, stderr),
	)
	registerCompletions(root)
	return root
}

func newAgentCommand(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "agent [--listen host:port] [--receive host:port]",
		Short: "Run as a load agent: send the loads a runner opens on this control port",
		Long: `Run as a load agent: an HTTP control port on which a runner opens loads,
starts them at an instant it chooses, and pulls their records. With
--receive, it also runs a measuring receiver whose receipts the runner
pulls the same way. Agents are started by the runner itself (agents: N in
a load step, on local) or run as pods of the runner's image (the
perf-agents chart); an agent serves only a runner of its own build. It
stops on SIGTERM or SIGINT.`,
		Example:            "  runner agent --listen :8081 --receive :8080",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			if code := agent.Main(args, stdout, stderr); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the runner's version, its Go and platform, and the agent image it runs",
		Example: "  runner version\n  runner --version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprint(stdout, versionText())
			return nil
		},
	}
}

// versionText is what runner version and runner --version print.
func versionText() string {
	return fmt.Sprintf("runner %s\n%s %s/%s\nagent image %s:%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, charts.ImageRepository, version)
}

func newSchemaCommand(stdout io.Writer) *cobra.Command {
	var ofMatrix bool
	var dir string
	cmd := &cobra.Command{
		Use:   "schema [--matrix] [--write DIR]",
		Short: "Print the JSON Schema of scenario files (or, with --matrix, of matrix files), or write both for an editor",
		Long: `Print the JSON Schema of scenario files, generated from the runner's own
types; with --matrix, that of matrix files. With --write DIR, write both
(scenario.schema.json, matrix.schema.json) into DIR, for an editor to
check and complete files outside this repository: it prints the first line
to give them, such as
# yaml-language-server: $schema=DIR/scenario.schema.json`,
		Example: `  runner schema > scenario.schema.json
  runner schema --write ~/.config/runner`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir != "" {
				return writeSchemas(stdout, dir)
			}
			schema := scenario.Schema()
			if ofMatrix {
				schema = matrix.Schema()
			}
			_, err := stdout.Write(schema)
			return err
		},
	}
	cmd.Flags().BoolVar(&ofMatrix, "matrix", false, "the schema of matrix files")
	cmd.Flags().StringVar(&dir, "write", "", "write scenario.schema.json and matrix.schema.json into this directory")
	return cmd
}

// writeSchemas writes both schemas into dir and says how an editor finds
// them.
func writeSchemas(stdout io.Writer, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return badInput(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	for name, schema := range map[string][]byte{"scenario.schema.json": scenario.Schema(), "matrix.schema.json": matrix.Schema()} {
		if err := os.WriteFile(filepath.Join(abs, name), schema, 0o644); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	fmt.Fprintf(stdout, "wrote %s and %s\nfirst line of a scenario file:\n# yaml-language-server: $schema=%s\nfirst line of a matrix file:\n# yaml-language-server: $schema=%s\n",
		filepath.Join(abs, "scenario.schema.json"), filepath.Join(abs, "matrix.schema.json"), filepath.Join(abs, "scenario.schema.json"), filepath.Join(abs, "matrix.schema.json"))
	return nil
}

// scenarioFlags are the flags that shape how a scenario is resolved.
type scenarioFlags struct {
	pace       string
	set        []string
	values     []string
	target     string
	access     kube.Access // for --target kubernetes
	cleanStale bool
	cmd        *cobra.Command
}

// register registers the flags on cmd; a command that runs (exec,
// platform) also takes the cluster's and --clean-stale.
func (f *scenarioFlags) register(cmd *cobra.Command, runs bool) {
	f.cmd = cmd
	cmd.Flags().StringVar(&f.pace, "pace", "", "a pace set of the scenario (e.g. 1k-2k) or a literal pace (e.g. 500:10,1000:30)")
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "override a variable: key=value (repeatable; dotted keys reach into maps)")
	cmd.Flags().StringArrayVarP(&f.values, "values", "f", nil, "a YAML file of variable overrides (repeatable)")
	cmd.Flags().StringVar(&f.target, "target", string(target.Local), "where the systems under test run: local or kubernetes")
	if runs {
		registerAccess(cmd, &f.access, "with --target kubernetes")
		cmd.Flags().BoolVar(&f.cleanStale, "clean-stale", false, "with --target kubernetes: delete objects of unfinished earlier runs found in the cluster instead of refusing to run")
	}
}

// clusterOnly are the flags that apply only to target kubernetes.
var clusterOnly = []string{"kubeconfig", "context", "namespace", "clean-stale", "agent-image"}

// refuseClusterFlags refuses, on a target other than kubernetes, the flags
// of cmd that only a cluster uses, rather than ignore them.
func refuseClusterFlags(cmd *cobra.Command, kind target.Kind) error {
	if kind == target.Kubernetes || cmd == nil {
		return nil
	}
	var given []string
	for _, name := range clusterOnly {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			given = append(given, "--"+name)
		}
	}
	if len(given) == 0 {
		return nil
	}
	return badInput(fmt.Errorf("%s: %s only with --target kubernetes, and the target is %s", strings.Join(given, ", "), map[bool]string{true: "applies", false: "apply"}[len(given) == 1], kind))
}

// registerAccess registers the flags that say which cluster to reach;
// when says when they apply, for their help.
func registerAccess(cmd *cobra.Command, a *kube.Access, when string) {
	cmd.Flags().StringVar(&a.Kubeconfig, "kubeconfig", "", when+": the kubeconfig file (default: KUBECONFIG, else ~/.kube/config)")
	cmd.Flags().StringVar(&a.Context, "context", "", when+": the kubeconfig context (default: the current one)")
	cmd.Flags().StringVarP(&a.Namespace, "namespace", "n", "", when+": the namespace (default: the context's, else default)")
}

// connect resolves and reaches the cluster of target kubernetes, before
// anything runs, and says which it is: a bad kubeconfig is bad input
// (exit 2), an unreachable server a failure (exit 1). On other targets it
// returns nil.
func connect(stdout io.Writer, kind target.Kind, a kube.Access) (*kube.Connection, error) {
	if kind != target.Kubernetes {
		return nil, nil
	}
	cl, err := kube.Connect(context.Background(), a, 10*time.Second)
	switch {
	case errors.Is(err, kube.ErrConfig):
		return nil, badInput(fmt.Errorf("--target kubernetes: %w", err))
	case err != nil:
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("--target kubernetes: %w; nothing was run", err)}
	}
	fmt.Fprintf(stdout, "target kubernetes: %s\n", cl)
	return cl, nil
}

func (f *scenarioFlags) options() (scenario.Options, error) {
	kind, err := target.ParseKind(f.target)
	if err != nil || f.target == "" {
		return scenario.Options{}, badInput(fmt.Errorf("--target %q: must be local or kubernetes", f.target))
	}
	if err := refuseClusterFlags(f.cmd, kind); err != nil {
		return scenario.Options{}, err
	}
	return scenario.Options{Pace: f.pace, Set: f.set, ValuesFiles: f.values, Target: kind}, nil
}

// opener opens a run's target: the embedded twins on local, cl on
// kubernetes. In runner cleanup, a run on kubernetes needs the cluster it
// ran on.
func opener(cl *kube.Connection) target.Opener {
	return func(run target.Run) (target.Target, error) {
		if run.Kind != target.Kubernetes {
			return twins.Open(run)
		}
		rec := run.Recorded
		switch {
		case rec != nil && (rec.Server == "" || run.ID == ""):
			return nil, fmt.Errorf("the run record names no cluster or run id: it cannot be cleaned up on kubernetes")
		case cl == nil && rec != nil:
			return nil, fmt.Errorf("the run was on kubernetes (context %s, server %s): give the cluster with --kubeconfig and --context", rec.Context, rec.Server)
		case cl == nil:
			return nil, fmt.Errorf("no cluster was given")
		}
		return kube.Opener(cl)(run)
	}
}

// loadScenario loads a scenario and maps its problems to exit code 2.
func loadScenario(file string, opts scenario.Options) (*scenario.Scenario, error) {
	sc, err := scenario.Load(file, opts)
	if err != nil {
		return nil, badInput(err)
	}
	return sc, nil
}
