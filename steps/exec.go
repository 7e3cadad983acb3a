package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() {
	Register(Kind{
		Name:      "exec",
		Doc:       "Runs a command; its output is kept in the run directory. With undo, the command is journaled as something to reverse at teardown.",
		New:       func() Spec { return new(Exec) },
		Retryable: true,
		Undo:      undoExec,
	})
}

// Exec runs a program directly (no shell) with arguments, environment and
// working directory. Its stdout and stderr are written to files in the step's
// directory. When Undo is set, the step counts as creating something: the undo
// command is journaled before Command runs and is run at teardown (or by
// `runner cleanup`) unless a teardown step already ran it.
type Exec struct {
	Command []string          `yaml:"command" runner:"required" doc:"program and arguments; the program is looked up in PATH"`
	Env     map[string]string `yaml:"env" doc:"environment variables added to the runner's own; their values are kept with the run (scenario.yaml, journal): not for secrets"`
	// SecretEnv names variables whose values come from the runner's own
	// environment when the command runs: they are never written down, so
	// that a token reaches the command and no file of the run.
	SecretEnv []string `yaml:"secretEnv" doc:"names of variables passed from the runner's environment at run time and never written anywhere, for tokens and passwords; runner cleanup needs them in its environment too"`
	Dir       string   `yaml:"dir" doc:"working directory; the runner's own when empty"`
	Undo      []string `yaml:"undo" doc:"program and arguments that reverse this command; it should succeed when there is nothing left to undo"`
}

// Validate checks that the commands name a program.
func (e *Exec) Validate() []FieldError {
	var errs []FieldError
	if len(e.Command) == 0 || e.Command[0] == "" {
		errs = append(errs, FieldError{Field: "command", Message: "must name a program"})
	}
	if e.Undo != nil && (len(e.Undo) == 0 || e.Undo[0] == "") {
		errs = append(errs, FieldError{Field: "undo", Message: "must name a program"})
	}
	for _, name := range e.SecretEnv {
		switch _, inEnv := e.Env[name]; {
		case !envName.MatchString(name):
			errs = append(errs, FieldError{Field: "secretEnv", Message: fmt.Sprintf("%q is not a variable name (letters, digits and _, not starting with a digit)", name)})
		case inEnv:
			errs = append(errs, FieldError{Field: "secretEnv", Message: fmt.Sprintf("%s is in env too: give it in one place", name)})
		default:
			if _, set := os.LookupEnv(name); !set {
				errs = append(errs, FieldError{Field: "secretEnv", Message: fmt.Sprintf("%s is not set in the runner's environment", name)})
			}
		}
	}
	return errs
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// undoCommand is what the journal keeps for an exec step with undo.
type undoCommand struct {
	Command   []string          `json:"command"`
	Env       map[string]string `json:"env,omitempty"`
	SecretEnv []string          `json:"secret_env,omitempty"` // names only
	Dir       string            `json:"dir,omitempty"`
}

// Creates declares the undo command, if any.
func (e *Exec) Creates(env *Env) ([]Resource, error) {
	if e.Undo == nil {
		return nil, nil
	}
	// The undo may run from another process (runner cleanup) started
	// elsewhere: pin the working directory.
	dir, err := filepath.Abs(e.Dir)
	if err != nil {
		return nil, err
	}
	undo, err := json.Marshal(undoCommand{Command: e.Undo, Env: e.Env, SecretEnv: e.SecretEnv, Dir: dir})
	if err != nil {
		return nil, err
	}
	return []Resource{{Kind: "exec", Name: filepath.Base(env.StepDir), Undo: undo}}, nil
}

// Run runs the command and waits for it. When ctx ends, the command's whole
// process group is killed.
func (e *Exec) Run(ctx context.Context, env *Env) error {
	return runCommand(ctx, env, e.Command, e.Env, e.SecretEnv, e.Dir, "")
}

func undoExec(ctx context.Context, u *UndoEnv, r Resource) error {
	var c undoCommand
	if err := json.Unmarshal(r.Undo, &c); err != nil {
		return fmt.Errorf("read undo command of %s: %w", r.ID(), err)
	}
	if len(c.Command) == 0 {
		return fmt.Errorf("undo command of %s is empty", r.ID())
	}
	env := &Env{RunDir: u.RunDir, StepDir: u.StepDir, Log: u.Log, Attempt: 1, Output: io.Discard, Status: func(string) {}}
	return runCommand(ctx, env, c.Command, c.Env, c.SecretEnv, c.Dir, "undo-")
}

// runCommand runs argv with its output appended to files in env.StepDir,
// named with prefix. Each attempt starts with a header line.
func runCommand(ctx context.Context, env *Env, argv []string, extraEnv map[string]string, secretEnv []string, dir, prefix string) error {
	for _, name := range secretEnv {
		if _, set := os.LookupEnv(name); !set {
			return fmt.Errorf("secretEnv %s is not set in the runner's environment", name)
		}
	}
	if err := os.MkdirAll(env.StepDir, 0o700); err != nil {
		return err
	}
	stdout, err := openLog(filepath.Join(env.StepDir, prefix+"stdout"), env.Attempt)
	if err != nil {
		return err
	}
	defer stdout.Close()
	stderr, err := openLog(filepath.Join(env.StepDir, prefix+"stderr"), env.Attempt)
	if err != nil {
		return err
	}
	defer stderr.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(extraEnv))
	for k := range extraEnv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+extraEnv[k])
	}
	// Its own process group, so that a cancelled step takes its children
	// with it and a Ctrl-C on the terminal reaches only the runner, which
	// decides what to stop.
	// Pdeathsig: a runner killed outright takes the command with it, so
	// that it cannot recreate what `runner cleanup` removes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	running.add(cmd.Process.Pid)
	defer running.remove(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return commandError(argv[0], stderr.Name(), err)
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return context.Cause(ctx)
	}
}

func openLog(path string, attempt int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if attempt > 1 {
		fmt.Fprintf(f, "--- attempt %d\n", attempt)
	}
	return f, nil
}

func commandError(program, stderrPath string, err error) error {
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if last := lastLine(stderrPath); last != "" {
			return fmt.Errorf("%s: %v: %q (stderr in %s)", program, exit.ProcessState, last, stderrPath)
		}
		return fmt.Errorf("%s: %v (stderr in %s)", program, exit.ProcessState, stderrPath)
	}
	return fmt.Errorf("%s: %w", program, err)
}

// lastLine is the last line a command wrote to the file at path, which is
// most often why it failed, cut to 200 bytes; "" when it wrote none.
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4096
	if info, err := f.Stat(); err == nil && info.Size() > tail {
		if _, err := f.Seek(info.Size()-tail, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\r\n\t "), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 200 {
		last = strings.ToValidUTF8(last[:200], "") + "…"
	}
	return last
}

// running tracks the process groups of commands in flight, so that a runner
// exiting at once can take them with it.
var running = processGroups{pids: map[int]bool{}}

type processGroups struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (g *processGroups) add(pid int) {
	g.mu.Lock()
	g.pids[pid] = true
	g.mu.Unlock()
}

func (g *processGroups) remove(pid int) {
	g.mu.Lock()
	delete(g.pids, pid)
	g.mu.Unlock()
}

// KillRunning kills the process group of every command a step is running.
// It is for a runner about to exit without waiting for its steps.
func KillRunning() {
	running.mu.Lock()
	defer running.mu.Unlock()
	for pid := range running.pids {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
