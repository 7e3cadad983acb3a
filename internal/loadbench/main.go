// Command loadbench measures the load generator on this machine and compares
// it with vegeta against the same receiver, in the same run: the highest
// pace each holds, the CPU each event costs the sender and the receiver (the
// runner's receiver against a CloudEvents SDK receiver), the p99 at 10k
// events/s, the sender's memory over a long run, and the runner's latency on
// a sink that answers after 2 ms against a minimal net/http client's. `make
// bench` runs it; ratios, not absolute figures, are what carry across
// machines.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

var (
	tick        *time.Duration
	connections *int
	agentRPS    *float64
)

func main() {
	agent.RunIfChild()
	serve := flag.String("serve", "", "run as a receiver process: runner, sdk, or a delay such as 2ms (internal)")
	trial := flag.Duration("trial", 10*time.Second, "length of each trial")
	long := flag.Duration("long", 3*time.Minute, "length of the memory run (RSS after 1 minute and at the end)")
	quick := flag.Bool("quick", false, "the same figures from 2 s trials and a 65 s memory run (under 3 minutes)")
	longRPS := flag.Float64("long-rps", 10000, "rate of the memory run")
	profileRPS := flag.Float64("profile-rps", 0, "only run the runner at this rate for one trial, writing CPU, mutex and block profiles (cpu.pprof, mutex.pprof, block.pprof)")
	tick = flag.Duration("tick", 0, "the runner's pacer tick (0: the default)")
	connections = flag.Int("connections", 0, "the runner's connections per sender (0: the default)")
	attackURL := flag.String("attack", "", "run vegeta against this URL and print its figures as JSON (internal)")
	attackRPS := flag.Float64("attack-rps", 0, "the rate of -attack (internal)")
	at := flag.String("at", "", "only run one trial of the runner and one of vegeta at each of these rates (comma-separated)")
	agentsOnly := flag.Bool("agents", false, "only run the agents' trials: 1 agent, then 3 at three times the rate")
	agentRPS = flag.Float64("agent-rps", 1000, "each agent's rate in the agents' trials")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["trial"] {
			*trial = 2 * time.Second
		}
		if !set["long"] {
			*long = 65 * time.Second
		}
	}
	if *agentsOnly {
		goals, err := agentsTrials(*trial)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		goals()
		return
	}
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
	if *attackURL != "" {
		if err := attack(*attackURL, *attackRPS, *trial); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if *serve != "" {
		if err := serveReceiver(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*trial, *long, *longRPS); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// serveReceiver runs a receiver of kind (the runner's, the CloudEvents
// SDK's, or a sink that answers 200 after a delay), prints its URL, and
// exits when its stdin closes.
func serveReceiver(kind string) error {
	var url string
	switch kind {
	case "runner":
		router := measure.NewRouter(nil)
		recv, err := loadgen.Listen("127.0.0.1:0", router.Route)
		if err != nil {
			return err
		}
		url = recv.URL()
	case "sdk":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		c, err := cloudevents.NewClientHTTP(cehttp.WithListener(ln))
		if err != nil {
			return err
		}
		// What a receiver must do: read each event's id and intended time.
		var seen atomic.Int64
		go func() {
			_ = c.StartReceiver(context.Background(), func(ev cloudevents.Event) {
				_, _ = strconv.ParseInt(fmt.Sprint(ev.Extensions()[loadgen.IntendedExtension]), 10, 64)
				if ev.ID() != "" {
					seen.Add(1)
				}
			})
		}()
		url = "http://" + ln.Addr().String() + "/"
	default:
		delay, err := time.ParseDuration(kind)
		if err != nil {
			return fmt.Errorf("-serve %q: runner, sdk or a delay", kind)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() {
			_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				time.Sleep(delay)
				w.WriteHeader(http.StatusOK)
			}))
		}()
		url = "http://" + ln.Addr().String() + "/"
	}
	fmt.Println(url)
	signal.Ignore(syscall.SIGINT)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// receiverProcess is the receiver running in a child process, so that its
// CPU is counted apart from the sender's.
type receiverProcess struct {
	cmd *exec.Cmd
	url string
}

func startReceiver(kind string) (*receiverProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve", kind)
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
	cpu, _ := agent.ProcessCPU(r.cmd.Process.Pid)
	return cpu
}

// cpuMark is this process's user and system CPU time at one instant.
type cpuMark struct{ user, sys time.Duration }

func markCPU() cpuMark {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuMark{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// since returns the CPU time used since m, and the part of it in the kernel.
func (m cpuMark) since() (cpu, sys time.Duration) {
	now := markCPU()
	return now.user - m.user + now.sys - m.sys, now.sys - m.sys
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
	senderSys    float64 // the share of it in the kernel
	receiverUS   float64
	held         bool // by the runner's own criterion (see run)
	heldLoose    bool // by the criterion vegeta is held to
}

// ours runs the runner's own load generator at rps for d against a fresh
// receiver process of the runner's.
func ours(rps float64, d time.Duration) (outcome, error) { return oursTo("runner", rps, d) }

// oursTo runs the runner's load generator at rps for d against a fresh
// receiver process of kind.
func oursTo(kind string, rps float64, d time.Duration) (outcome, error) {
	recv, err := startReceiver(kind)
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
	mark := markCPU()
	rcpu0 := recv.cpu()
	_, err = m.Run(context.Background(), measure.Load{Config: loadgen.Config{Name: "bench", Pace: steps, URL: recv.url, Tick: *tick, Connections: *connections}, Phase: "measure", SendOnly: true})
	cpu, sys := mark.since()
	rcpu := recv.cpu() - rcpu0
	if err != nil {
		return outcome{}, err
	}
	s := m.Summary().Paces[0]
	_, _ = m.Finish()
	o := outcome{
		rps: rps, achieved: s.AchievedSendRPS, dropped: s.Dropped, failures: s.SendFailures,
		p99MS: s.PublishMS.P99, serviceP99MS: s.ServiceMS.P99, sendLagP99MS: s.SendLagMS.P99,
		senderUS: float64(cpu.Microseconds()) / float64(s.Sent), senderSys: sys.Seconds() / cpu.Seconds(),
		receiverUS: float64(rcpu.Microseconds()) / float64(s.Sent),
	}
	o.held = o.achieved >= 0.995*rps && o.dropped == 0 && o.failures == 0 && o.sendLagP99MS <= 1
	o.heldLoose = o.achieved >= 0.995*rps && o.dropped == 0 && o.failures <= int64(0.005*float64(s.Sent)) && o.p99MS <= 10
	return o, nil
}

// agentsTrial sends rps for d from n local agent processes to a fresh
// receiver process, and returns the outcome with the agents' CPU as the
// sender's, and the control traffic (the runner's connections to the
// agents, both ways) as a share of the events' bytes.
func agentsTrial(n int, rps float64, d time.Duration) (outcome, float64, error) {
	recv, err := startReceiver("runner")
	if err != nil {
		return outcome{}, 0, err
	}
	defer recv.stop()
	local, err := agent.StartLocal(context.Background(), n)
	if err != nil {
		return outcome{}, 0, err
	}
	defer local.Stop()
	dir, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return outcome{}, 0, err
	}
	defer os.RemoveAll(dir)
	m, err := measure.Open(dir, results.Meta{Scenario: "bench"}, nil)
	if err != nil {
		return outcome{}, 0, err
	}
	const payload = 8192
	steps := []pace.Step{{RPS: rps, Duration: d}}
	cpu0, sys0 := local.CPU()
	rcpu0 := recv.cpu()
	_, err = m.Run(context.Background(), measure.Load{Config: loadgen.Config{Name: "bench", Pace: steps, URL: recv.url, PayloadBytes: payload}, Phase: "measure", SendOnly: true, Open: agent.Opener(local.Clients)})
	cpu, sys := local.CPU()
	cpu, sys, rcpu := cpu-cpu0, sys-sys0, recv.cpu()-rcpu0
	if err != nil {
		return outcome{}, 0, err
	}
	s := m.Summary().Paces[0]
	_, _ = m.Finish()
	var control int64
	for _, c := range local.Clients {
		r, w := c.Traffic()
		control += r + w
	}
	o := outcome{
		rps: rps, achieved: s.AchievedSendRPS, dropped: s.Dropped, failures: s.SendFailures,
		p99MS: s.PublishMS.P99, serviceP99MS: s.ServiceMS.P99, sendLagP99MS: s.SendLagMS.P99,
		senderUS: float64(cpu.Microseconds()) / float64(s.Sent), senderSys: sys.Seconds() / cpu.Seconds(), receiverUS: float64(rcpu.Microseconds()) / float64(s.Sent),
	}
	o.held = o.achieved >= 0.995*rps && o.dropped == 0 && o.failures == 0 && o.sendLagP99MS <= 1
	o.heldLoose = o.held
	return o, float64(control) / float64(s.Sent*payload), nil
}

// goal prints a ratio against its target.
func goal(what string, ratio float64, cmp string, target float64, detail string) {
	met := ratio >= target
	if cmp == "≤" {
		met = ratio <= target
	}
	state := "met"
	if !met {
		state = "NOT MET"
	}
	fmt.Printf("  %-44s ratio %5.2f (target %s %.2f, %s)  %s\n", what, ratio, cmp, target, state, detail)
}

// agentsTrials runs one agent at -agent-rps, then three at three times it,
// each its third: the same pace per agent, so that the CPU per event
// compares the distributed path with itself, not rates with each other. It
// returns the outcomes and a function that prints their goals.
func agentsTrials(trial time.Duration) (func(), error) {
	rps := *agentRPS
	fmt.Printf("agents: 1 agent at %g events/s, then 3 agents sharing %g events/s (CPU of the agent processes per event):\n", rps, 3*rps)
	one, oneControl, err := agentsTrial(1, rps, trial)
	if err != nil {
		return nil, err
	}
	report("1 agent", one)
	three, threeControl, err := agentsTrial(3, 3*rps, trial)
	if err != nil {
		return nil, err
	}
	report("3 agents", three)
	goals := func() {
		goal("3 agents' pace per core against 1 agent's", one.senderUS/three.senderUS, "≥", 0.9,
			fmt.Sprintf("%.1f µs per event at %g/s over 3 agents (%s), %.1f µs at %g/s on 1 (%s)", three.senderUS, 3*rps, verdict(three), one.senderUS, rps, verdict(one)))
		goal("3 agents' control traffic against 2 % of event bytes", threeControl/0.02, "≤", 1,
			fmt.Sprintf("%.2f %% of the events' bytes (1 agent: %.2f %%)", 100*threeControl, 100*oneControl))
	}
	return goals, nil
}

// vegetaRun runs vegeta at rps for d against a fresh receiver process, with
// the same CloudEvents headers and payload. Vegeta runs in a process of its
// own, one per trial, after a warm-up of its own: in this process, what a
// collapsing trial leaves (thousands of goroutines and connections, a grown
// heap) raised the runner's later send lag from 0.7 ms to 1.7–2.5 ms at
// 2500/s.
func vegetaRun(rps float64, d time.Duration) (outcome, error) {
	recv, err := startReceiver("runner")
	if err != nil {
		return outcome{}, err
	}
	defer recv.stop()
	self, err := os.Executable()
	if err != nil {
		return outcome{}, err
	}
	rcpu0 := recv.cpu()
	cmd := exec.Command(self, "-attack", recv.url, "-attack-rps", strconv.FormatFloat(rps, 'f', -1, 64), "-trial", d.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return outcome{}, fmt.Errorf("vegeta at %g/s: %w", rps, err)
	}
	rcpu := recv.cpu() - rcpu0
	var a attackResult
	if err := json.Unmarshal(out, &a); err != nil {
		return outcome{}, fmt.Errorf("vegeta at %g/s: %w (%q)", rps, err, out)
	}
	o := outcome{
		rps: rps, achieved: a.Rate, failures: int64(float64(a.Requests) * (1 - a.Success)),
		p99MS: a.P99MS, serviceP99MS: a.P99MS,
		senderUS: a.CPUUS / float64(a.Requests), senderSys: a.SysUS / a.CPUUS, receiverUS: float64(rcpu.Microseconds()) / float64(a.Warm+a.Requests),
	}
	o.held = o.achieved >= 0.995*rps && a.Success >= 0.995 && o.p99MS <= 10
	o.heldLoose = o.held
	return o, nil
}

// attackResult is what a vegeta process reports of its trial.
type attackResult struct {
	Rate     float64 `json:"rate"`
	Requests uint64  `json:"requests"`
	Success  float64 `json:"success"`
	P99MS    float64 `json:"p99_ms"`
	CPUUS    float64 `json:"cpu_us"` // the attack's own, the process's start and the warm-up left out
	SysUS    float64 `json:"sys_us"` // of which in the kernel
	Warm     uint64  `json:"warm_up_requests"`
}

// attack runs vegeta at rps for d against url and prints its attackResult.
func attack(url string, rps float64, d time.Duration) error {
	header := http.Header{
		"Ce-Specversion": {"1.0"}, "Ce-Id": {"vegeta-1"}, "Ce-Type": {loadgen.EventType}, "Ce-Source": {loadgen.EventSource},
		"Content-Type": {"application/octet-stream"},
	}
	body := make([]byte, 8192)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: url, Body: body, Header: header})
	// Vegeta's own client, as NewAttacker builds it, shared by a warm-up
	// attack and the trial: the trial starts with the connections the
	// warm-up opened, which a fresh vegeta process otherwise opens under
	// load (and at times collapses doing so, even at 2500/s). An attacker
	// stops for good after one attack.
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: vegeta.DefaultLocalAddr.IP, Zone: vegeta.DefaultLocalAddr.Zone}, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     vegeta.DefaultTLSConfig,
			MaxIdleConnsPerHost: vegeta.DefaultConnections,
			MaxConnsPerHost:     vegeta.DefaultMaxConnections,
		},
	}
	rate := vegeta.Rate{Freq: int(rps), Per: time.Second}
	var warm uint64
	for range vegeta.NewAttacker(vegeta.Client(client)).Attack(tr, rate, min(d, time.Second), "warm-up") {
		warm++
	}
	atk := vegeta.NewAttacker(vegeta.Client(client))
	var m vegeta.Metrics
	mark := markCPU()
	for res := range atk.Attack(tr, rate, d, "bench") {
		m.Add(res)
	}
	m.Close()
	cpu, sys := mark.since()
	if m.Requests == 0 {
		return fmt.Errorf("vegeta sent nothing")
	}
	return json.NewEncoder(os.Stdout).Encode(attackResult{
		Rate: m.Rate, Requests: m.Requests, Success: m.Success, P99MS: float64(m.Latencies.P99) / 1e6, CPUUS: float64(cpu.Microseconds()), SysUS: float64(sys.Microseconds()), Warm: warm,
	})
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

// verdict says whether o held, by the strict criterion or only by the
// loose one.
func verdict(o outcome) string {
	switch {
	case !o.held && o.heldLoose:
		return "broke (held at p99 ≤ 10 ms)"
	case !o.held:
		return "BROKE"
	}
	return "held"
}

func report(name string, o outcome) {
	fmt.Printf("  %-7s %7.0f/s  sent %8.1f/s  dropped %5d  failed %5d  p99 %8.3f ms  (from actual send %8.3f ms)  send-lag p99 %7.3f ms  cpu/event sender %5.1f µs (kernel %2.0f %%) receiver %5.1f µs  %s\n",
		name, o.rps, o.achieved, o.dropped, o.failures, o.p99MS, o.serviceP99MS, o.sendLagP99MS, o.senderUS, 100*o.senderSys, o.receiverUS, verdict(o))
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
	fmt.Println("receivers at 10000 events/s, the runner sending: the runner's, then a CloudEvents SDK client's (StartReceiver):")
	ourRecv, err := ours(10000, trial)
	if err != nil {
		return err
	}
	report("runner", ourRecv)
	sdkRecv, err := oursTo("sdk", 10000, trial)
	if err != nil {
		return err
	}
	report("sdk", sdkRecv)

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

	// CPU per event falls with the rate (a wake-up serves more events),
	// and a generator that collapses spends more per event sent: the
	// senders are compared at the same rate, the highest vegeta holds.
	fmt.Printf("runner at %g events/s, vegeta's highest pace held (sender CPU per event at the same rate):\n", vegBest.rps)
	ourAtVeg, err := ours(vegBest.rps, trial)
	if err != nil {
		return err
	}
	report("runner", ourAtVeg)

	fmt.Println("a sink that answers after 2 ms (time.Sleep), at 1000 events/s: the runner, then a minimal net/http client (a goroutine per event, paced by time.Sleep, timed from its actual send):")
	ourBias, minimal, err := bias(1000, trial, 2*time.Millisecond)
	if err != nil {
		return err
	}
	fmt.Print(ourBias, minimal)

	agentGoals, err := agentsTrials(trial)
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
	fmt.Println("summary (ratio: runner against the reference; target as set for the runner)")
	goal("highest pace, vegeta's criterion", ourLoose.rps/vegBest.rps, "≥", 2,
		fmt.Sprintf("runner %.0f/s, vegeta %.0f/s", ourLoose.rps, vegBest.rps))
	goal("highest pace, strict (send-lag p99 ≤ 1 ms)", ourBest.rps/vegBest.rps, "≥", 1,
		fmt.Sprintf("runner %.0f/s, vegeta %.0f/s by its own", ourBest.rps, vegBest.rps))
	goal(fmt.Sprintf("sender CPU per event at %g/s", vegBest.rps), ourAtVeg.senderUS/vegBest.senderUS, "≤", 0.5,
		fmt.Sprintf("runner %.1f µs, vegeta %.1f µs (at 10k/s: %.1f µs, vegeta %.1f µs, %s)", ourAtVeg.senderUS, vegBest.senderUS, our10k.senderUS, veg10k.senderUS, verdict(veg10k)))
	goal("receiver CPU per event at 10k/s", ourRecv.receiverUS/sdkRecv.receiverUS, "≤", 0.5,
		fmt.Sprintf("runner %.1f µs, SDK %.1f µs", ourRecv.receiverUS, sdkRecv.receiverUS))
	goal("p99 at 10k/s (runner's from intended time)", our10k.p99MS/veg10k.p99MS, "≤", 0.25,
		fmt.Sprintf("runner %.3f ms (%.3f ms from the actual send), vegeta %.3f ms", our10k.p99MS, our10k.serviceP99MS, veg10k.p99MS))
	goal(fmt.Sprintf("RSS after %s against after 1 min", long), rssEnd/after1, "≤", 1.1,
		fmt.Sprintf("%.0f MiB, %.0f MiB", rssEnd, after1))
	agentGoals()
	fmt.Printf("  2 ms sink at 1000/s, p90: runner %.3f ms from intended time, %.3f ms from the actual send; minimal client %.3f ms; above 3 ms: %.1f %%, %.1f %%, %.1f %%\n",
		ourBias.publish.q(0.9), ourBias.service.q(0.9), minimal.service.q(0.9), ourBias.publish.above(3), ourBias.service.above(3), minimal.service.above(3))
	return nil
}

// latencies are one trial's latencies in ms, sorted.
type latencies []float64

func (l latencies) q(p float64) float64 {
	if len(l) == 0 {
		return math.NaN()
	}
	return l[min(len(l)-1, int(p*float64(len(l))))]
}

// above returns the share of l above ms, in %.
func (l latencies) above(ms float64) float64 {
	n := len(l) - sort.SearchFloat64s(l, math.Nextafter(ms, math.Inf(1)))
	return 100 * float64(n) / float64(max(1, len(l)))
}

// biasTrial is one client's latencies on the delaying sink.
type biasTrial struct {
	name                      string
	publish, service, sendLag latencies
}

func (b biasTrial) String() string {
	var s strings.Builder
	line := func(what string, l latencies) {
		if len(l) > 0 {
			fmt.Fprintf(&s, "  %-8s %-24s p50 %7.3f  p90 %7.3f  p99 %7.3f  p99.9 %7.3f ms  above 3 ms %5.1f %%\n", b.name, what, l.q(0.5), l.q(0.9), l.q(0.99), l.q(0.999), l.above(3))
		}
	}
	line("from intended time", b.publish)
	line("from actual send", b.service)
	line("send lag", b.sendLag)
	return s.String()
}

// records keeps a load's send records.
type records struct {
	mu  sync.Mutex
	out []loadgen.Record
}

func (r *records) Add(x loadgen.Record) {
	if x.Op == loadgen.OpSent && x.OK {
		r.mu.Lock()
		r.out = append(r.out, x)
		r.mu.Unlock()
	}
}

// bias runs the runner's load generator, then a minimal net/http client,
// at rps for d against one sink process that answers after delay.
func bias(rps float64, d, delay time.Duration) (runner, minimal biasTrial, err error) {
	recv, err := startReceiver(delay.String())
	if err != nil {
		return runner, minimal, err
	}
	defer recv.stop()
	gen, err := loadgen.New(loadgen.Config{Name: "bias", Pace: []pace.Step{{RPS: rps, Duration: d}}, URL: recv.url, Tick: *tick})
	if err != nil {
		return runner, minimal, err
	}
	if err := gen.ProbeAnswer(context.Background()); err != nil {
		return runner, minimal, err
	}
	gen.Warm(context.Background())
	var rec records
	_, err = gen.Run(context.Background(), time.Now().Add(200*time.Millisecond), &rec)
	gen.Close()
	if err != nil {
		return runner, minimal, err
	}
	runner.name = "runner"
	for _, r := range rec.out {
		runner.publish = append(runner.publish, float64(r.Answered-r.Intended)/1e6)
		runner.service = append(runner.service, float64(r.Answered-r.Started)/1e6)
		runner.sendLag = append(runner.sendLag, float64(r.Started-r.Intended)/1e6)
	}
	minimal = biasTrial{name: "minimal", service: minimalClient(recv.url, rps, d)}
	for _, l := range []latencies{runner.publish, runner.service, runner.sendLag, minimal.service} {
		sort.Float64s(l)
	}
	return runner, minimal, nil
}

// minimalClient sends rps requests a second for d, each from a goroutine of
// its own started when its time comes (time.Sleep), with net/http's client,
// and returns their latencies from their actual sends in ms.
func minimalClient(url string, rps float64, d time.Duration) latencies {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 5 * time.Second}
	body := make([]byte, 8192)
	n := int(rps * d.Seconds())
	out := make(latencies, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rps * 1e9))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", "minimal-"+strconv.Itoa(i))
			req.Header.Set("Ce-Type", loadgen.EventType)
			req.Header.Set("Ce-Source", loadgen.EventSource)
			req.Header.Set("Content-Type", "application/octet-stream")
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				out[i] = math.Inf(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
		}()
	}
	wg.Wait()
	client.CloseIdleConnections()
	return out
}
