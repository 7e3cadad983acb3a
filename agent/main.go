package agent

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stamp is the runner's version as its build set it (cmd/runner's
// main.version, which make build and make image set to git describe
// --always --dirty); cmd/runner sets it.
var Stamp string

// Version identifies the runner's build, which an agent must share: Stamp,
// the main module's version and, when the build recorded it, its VCS
// revision (a build with -buildvcs=false records none).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Stamp + " unknown"
	}
	v := bi.Main.Path + "@" + bi.Main.Version
	if Stamp != "" {
		v = Stamp + " " + v
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			v += "+" + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			v += "-dirty"
		}
	}
	return v
}

// listening starts the line an agent prints once it serves.
const listening = "agent listening on "

// Main runs `runner agent` with args (after "agent") until SIGTERM or
// SIGINT, and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", ":8080", "host:port of the control port")
	receive := fs.String("receive", "", "host:port of a measuring receiver whose receipts the runner pulls (none when empty)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "agent:", err)
		return 1
	}
	srv := NewServer(Version())
	if v := os.Getenv(SkewEnv); v != "" {
		skew, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(stderr, "agent: %s: %v\n", SkewEnv, err)
			return 2
		}
		srv.skew = skew
	}
	var receiverURL string
	if *receive != "" {
		if receiverURL, err = srv.Receive(*receive); err != nil {
			fmt.Fprintln(stderr, "agent:", err)
			return 1
		}
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "%shttp://%s\n", listening, ln.Addr())
	if receiverURL != "" {
		fmt.Fprintf(stdout, "agent receiving on %s\n", receiverURL)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		fmt.Fprintln(stderr, "agent:", err)
		srv.Close()
		return 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	srv.Close()
	return 0
}

// SkewEnv, a duration, sets an agent's clock off by that much, for tests of
// the runner's clock correction.
const SkewEnv = "PERFRUNNER_AGENT_CLOCK_SKEW"

// ChildEnv marks a process started by StartLocal: a test binary that
// starts agents runs Main when it finds it (see RunIfChild).
const ChildEnv = "PERFRUNNER_AGENT"

// RunIfChild runs the agent and exits when this process is one that
// StartLocal started; a test binary calls it first in its TestMain.
func RunIfChild() {
	if os.Getenv(ChildEnv) != "1" {
		return
	}
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	os.Exit(Main(args, os.Stdout, os.Stderr))
}

// Local is agents running as child processes of this binary.
type Local struct {
	Clients []*Client
	cmds    []*exec.Cmd
	once    sync.Once
}

// StartLocal starts n agents as child processes of this binary on
// loopback, and dials them. They die with this process (PDEATHSIG).
func StartLocal(ctx context.Context, n int) (*Local, error) { return startLocal(ctx, n, nil) }

// startLocal is StartLocal with env(k) added to agent k's environment and
// args to its command line.
func startLocal(ctx context.Context, n int, env func(k int) []string, args ...string) (*Local, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l := &Local{}
	for k := range n {
		cmd := exec.Command(self, append([]string{"agent", "--listen", "127.0.0.1:0"}, args...)...)
		cmd.Env = append(os.Environ(), ChildEnv+"=1")
		if env != nil {
			cmd.Env = append(cmd.Env, env(k)...)
		}
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			l.Stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			l.Stop()
			return nil, fmt.Errorf("starting an agent: %w", err)
		}
		l.cmds = append(l.cmds, cmd)
		url, err := readURL(out)
		if err != nil {
			l.Stop()
			return nil, err
		}
		c, err := Dial(ctx, url, Version())
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.Clients = append(l.Clients, c)
	}
	return l, nil
}

// readURL reads the agent's first line, which says where it listens, and
// drains the rest.
func readURL(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("an agent did not start: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, br) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), listening)
	if !ok {
		return "", fmt.Errorf("an agent said %q instead of where it listens", line)
	}
	return url, nil
}

// CPU returns the user and system CPU time the agents used so far, and
// the system part of it.
func (l *Local) CPU() (cpu, sys time.Duration) {
	for _, c := range l.cmds {
		c, s := ProcessCPU(c.Process.Pid)
		cpu, sys = cpu+c, sys+s
	}
	return cpu, sys
}

// ProcessCPU returns a process's user and system CPU time, and the system
// part of it, from /proc; 0 when it cannot be read.
func ProcessCPU(pid int) (cpu, sys time.Duration) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The fields after the command name, which is in parentheses.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const tick = time.Second / 100 // CLK_TCK on Linux
	return time.Duration(utime+stime) * tick, time.Duration(stime) * tick
}

// Kill kills agent k at once, as a crash would.
func (l *Local) Kill(k int) error { return l.cmds[k].Process.Kill() }

// Stop ends the agents: SIGTERM, then SIGKILL after 10 s.
func (l *Local) Stop() {
	l.once.Do(func() {
		for _, c := range l.cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range l.cmds {
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	})
}
