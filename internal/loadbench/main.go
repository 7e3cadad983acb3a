// Command loadbench measures the load generator on this machine and compares
// it with vegeta against the same receiver, in the same run: the highest
// pace each holds, the CPU each event costs the sender and the receiver, the
// p99 at 10k events/s, and the sender's memory over a long run. `make bench`
// runs it; ratios, not absolute figures, are what carry across machines.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

var tick *time.Duration

func main() {
	serve := flag.Bool("serve", false, "run as the receiver process (internal)")
	trial := flag.Duration("trial", 10*time.Second, "length of each trial")
	long := flag.Duration("long", 3*time.Minute, "length of the memory run (RSS after 1 minute and at the end)")
	longRPS := flag.Float64("long-rps", 10000, "rate of the memory run")
	profileRPS := flag.Float64("profile-rps", 0, "only run the runner at this rate for one trial, writing CPU, mutex and block profiles (cpu.pprof, mutex.pprof, block.pprof)")
	tick = flag.Duration("tick", 0, "the runner's pacer tick (0: the default)")
	at := flag.String("at", "", "only run one trial of the runner and one of vegeta at each of these rates (comma-separated)")
	flag.Parse()
	if *at != "" {
		if err := trials(*at, *trial); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if *profileRPS > 0 {
		if err := profile(*profileRPS, *trial); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if *serve {
		serveReceiver()
		return
	}
	if err := run(*trial, *long, *longRPS); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// serveReceiver runs a receiver that counts what it gets, prints its URL, and
// exits when its stdin closes.
func serveReceiver() {
	router := measure.NewRouter(nil)
	recv, err := loadgen.Listen("127.0.0.1:0", router.Route)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(recv.URL())
	signal.Ignore(syscall.SIGINT)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// receiverProcess is the receiver running in a child process, so that its
// CPU is counted apart from the sender's.
type receiverProcess struct {
	cmd *exec.Cmd
	url string
}

func startReceiver() (*receiverProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("receiver did not start: %w", err)
	}
	_ = stdin // closed when this process exits
	return &receiverProcess{cmd: cmd, url: strings.TrimSpace(line)}, nil
}

// stop ends the receiver process.
func (r *receiverProcess) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// cpu returns the process's user+system CPU time.
func (r *receiverProcess) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // CLK_TCK on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// outcome is one trial at one rate.
type outcome struct {
	rps          float64
	achieved     float64 // sent/s
	dropped      int64
	failures     int64
	p99MS        float64 // publish, from the intended time (ours) or latency from the actual send (vegeta)
	serviceP99MS float64 // from the actual send: what vegeta measures
	sendLagP99MS float64
	senderUS     float64 // CPU µs per event
	receiverUS   float64
	held         bool // by the runner's own criterion (see run)
	heldLoose    bool // by the criterion vegeta is held to
}

// ours runs the runner's own load generator at rps for d against a fresh
// receiver process.
func ours(rps float64, d time.Duration) (outcome, error) {
	recv, err := startReceiver()
	if err != nil {
		return outcome{}, err
	}
	defer recv.stop()
	dir, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)
	m, err := measure.Open(dir, results.Meta{Scenario: "bench"}, nil)
	if err != nil {
		return outcome{}, err
	}
	steps := []pace.Step{{RPS: rps, Duration: d}}
	cpu0, rcpu0 := selfCPU(), recv.cpu()
	_, err = m.Run(context.Background(), measure.Load{Config: loadgen.Config{Name: "bench", Pace: steps, URL: recv.url, Tick: *tick}, Phase: "measure", SendOnly: true})
	cpu, rcpu := selfCPU()-cpu0, recv.cpu()-rcpu0
	if err != nil {
		return outcome{}, err
	}
	s := m.Summary().Paces[0]
	_, _ = m.Finish()
	o := outcome{
		rps: rps, achieved: s.AchievedSendRPS, dropped: s.Dropped, failures: s.SendFailures,
		p99MS: s.PublishMS.P99, serviceP99MS: s.ServiceMS.P99, sendLagP99MS: s.SendLagMS.P99,
		senderUS: float64(cpu.Microseconds()) / float64(s.Sent), receiverUS: float64(rcpu.Microseconds()) / float64(s.Sent),
	}
	o.held = o.achieved >= 0.995*rps && o.dropped == 0 && o.failures == 0 && o.sendLagP99MS <= 1
	o.heldLoose = o.achieved >= 0.995*rps && o.dropped == 0 && o.failures <= int64(0.005*float64(s.Sent)) && o.p99MS <= 10
	return o, nil
}

// vegetaRun runs vegeta at rps for d against a fresh receiver process, with
// the same CloudEvents headers and payload.
func vegetaRun(rps float64, d time.Duration) (outcome, error) {
	recv, err := startReceiver()
	if err != nil {
		return outcome{}, err
	}
	defer recv.stop()
	header := http.Header{
		"Ce-Specversion": {"1.0"}, "Ce-Id": {"vegeta-1"}, "Ce-Type": {loadgen.EventType}, "Ce-Source": {loadgen.EventSource},
		"Content-Type": {"application/octet-stream"},
	}
	body := make([]byte, 8192)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: recv.url, Body: body, Header: header})
	atk := vegeta.NewAttacker(vegeta.Timeout(5 * time.Second))
	var m vegeta.Metrics
	cpu0, rcpu0 := selfCPU(), recv.cpu()
	for res := range atk.Attack(tr, vegeta.Rate{Freq: int(rps), Per: time.Second}, d, "bench") {
		m.Add(res)
	}
	m.Close()
	cpu, rcpu := selfCPU()-cpu0, recv.cpu()-rcpu0
	o := outcome{
		rps: rps, achieved: m.Rate, failures: int64(float64(m.Requests) * (1 - m.Success)),
		p99MS: float64(m.Latencies.P99) / 1e6, serviceP99MS: float64(m.Latencies.P99) / 1e6,
		senderUS: float64(cpu.Microseconds()) / float64(m.Requests), receiverUS: float64(rcpu.Microseconds()) / float64(m.Requests),
	}
	o.held = o.achieved >= 0.995*rps && m.Success >= 0.995 && o.p99MS <= 10
	o.heldLoose = o.held
	return o, nil
}

// highest finds the highest rate a trial holds by criterion held: a ladder,
// then a bisection.
func highest(name string, try func(float64) (outcome, error), held func(outcome) bool) (outcome, error) {
	var best, failed outcome
	for _, rps := range []float64{2500, 5000, 7500, 10000, 15000, 20000, 25000, 30000, 40000, 50000} {
		o, err := try(rps)
		if err != nil {
			return best, err
		}
		report(name, o)
		if !held(o) {
			// One retry: on a shared two-core machine a single trial can
			// break on noise from outside.
			if o, err = try(rps); err != nil {
				return best, err
			}
			report(name+"²", o)
		}
		if !held(o) {
			failed = o
			break
		}
		best = o
	}
	for i := 0; i < 2 && failed.rps > 0 && failed.rps-best.rps > 500; i++ {
		mid := (best.rps + failed.rps) / 2
		o, err := try(mid)
		if err != nil {
			return best, err
		}
		report(name, o)
		if held(o) {
			best = o
		} else {
			failed = o
		}
	}
	return best, nil
}

func report(name string, o outcome) {
	verdict := "held"
	switch {
	case !o.held && o.heldLoose:
		verdict = "broke (held at p99 ≤ 10 ms)"
	case !o.held:
		verdict = "BROKE"
	}
	fmt.Printf("  %-7s %7.0f/s  sent %8.1f/s  dropped %5d  failed %5d  p99 %8.3f ms  (from actual send %8.3f ms)  send-lag p99 %7.3f ms  cpu/event sender %5.1f µs receiver %5.1f µs  %s\n",
		name, o.rps, o.achieved, o.dropped, o.failures, o.p99MS, o.serviceP99MS, o.sendLagP99MS, o.senderUS, o.receiverUS, verdict)
}

// trials runs one trial of each generator at each rate of list.
func trials(list string, trial time.Duration) error {
	for _, f := range strings.Split(list, ",") {
		rps, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("-at: %w", err)
		}
		o, err := ours(rps, trial)
		if err != nil {
			return err
		}
		report("runner", o)
		if o, err = vegetaRun(rps, trial); err != nil {
			return err
		}
		report("vegeta", o)
	}
	return nil
}

// profile runs one trial of the runner under the CPU profiler.
func profile(rps float64, trial time.Duration) error {
	f, err := os.Create("cpu.pprof")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(int(time.Millisecond))
	o, err := ours(rps, trial)
	pprof.StopCPUProfile()
	for _, name := range []string{"mutex", "block"} {
		out, err := os.Create(name + ".pprof")
		if err != nil {
			return err
		}
		_ = pprof.Lookup(name).WriteTo(out, 0)
		out.Close()
	}
	if err != nil {
		return err
	}
	report("runner", o)
	return nil
}

func run(trial, long time.Duration, longRPS float64) error {
	fmt.Printf("loadbench: %s trials, each against a fresh receiver process\n", trial)
	fmt.Println("at 10000 events/s:")
	our10k, err := ours(10000, trial)
	if err != nil {
		return err
	}
	report("runner", our10k)
	veg10k, err := vegetaRun(10000, trial)
	if err != nil {
		return err
	}
	report("vegeta", veg10k)

	oursAt := func(rps float64) (outcome, error) { return ours(rps, trial) }
	fmt.Println("runner: highest pace held (sent ≥ 99.5 % of target, nothing dropped or failed, send-lag p99 ≤ 1 ms):")
	ourBest, err := highest("runner", oursAt, func(o outcome) bool { return o.held })
	if err != nil {
		return err
	}
	fmt.Println("runner: highest pace held by vegeta's criterion (p99 ≤ 10 ms, here from the intended time):")
	ourLoose, err := highest("runner", oursAt, func(o outcome) bool { return o.heldLoose })
	if err != nil {
		return err
	}
	fmt.Println("vegeta: highest pace held (sent ≥ 99.5 % of target, ≥ 99.5 % success, p99 ≤ 10 ms from the actual send):")
	vegBest, err := highest("vegeta", func(rps float64) (outcome, error) { return vegetaRun(rps, trial) }, func(o outcome) bool { return o.held })
	if err != nil {
		return err
	}

	fmt.Printf("memory: runner at %g events/s for %s\n", longRPS, long)
	rss1 := make(chan float64, 1)
	time.AfterFunc(time.Minute, func() { rss1 <- rssMiB() })
	if _, err := ours(longRPS, long); err != nil {
		return err
	}
	rssEnd := rssMiB()
	after1 := <-rss1

	fmt.Println()
	fmt.Println("summary")
	fmt.Printf("  highest pace held: runner %.0f/s (send-lag p99 ≤ 1 ms), %.0f/s (vegeta's criterion); vegeta %.0f/s; ratios %.2f, %.2f\n",
		ourBest.rps, ourLoose.rps, vegBest.rps, ourBest.rps/vegBest.rps, ourLoose.rps/vegBest.rps)
	fmt.Printf("  p99 at 10k/s: runner %.3f ms from the intended time, %.3f ms from the actual send; vegeta %.3f ms from the actual send; ratio (actual send) %.2f\n",
		our10k.p99MS, our10k.serviceP99MS, veg10k.p99MS, our10k.serviceP99MS/veg10k.p99MS)
	fmt.Printf("  CPU per event at 10k/s: runner sender %.1f µs, receiver %.1f µs; vegeta sender %.1f µs, receiver %.1f µs; sender ratio %.2f\n",
		our10k.senderUS, our10k.receiverUS, veg10k.senderUS, veg10k.receiverUS, our10k.senderUS/veg10k.senderUS)
	fmt.Printf("  runner RSS: %.0f MiB after 1 min, %.0f MiB after %s (ratio %.2f)\n", after1, rssEnd, long, rssEnd/after1)
	fmt.Printf("  target ≥ 20000/s held with tool-induced p99 ≤ 5 ms: %v\n", ourBest.rps >= 20000 && ourBest.p99MS <= 5)
	return nil
}
