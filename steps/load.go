package steps

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/internal/redact"
	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/target"
)

func init() {
	Register(Kind{
		Name: "load",
		Doc:  "Sends paced CloudEvents to a sink and measures publish and end-to-end latency and throughput.",
		New:  func() Spec { return &Load{phase: "measure"} },
	})
	Register(Kind{
		Name: "warmup",
		Doc:  "Sends paced CloudEvents like load, recorded apart and never mixed into the measured figures.",
		New:  func() Spec { return &Load{phase: "warmup"} },
	})
}

// Load drives a pace of CloudEvents at a sink (see package loadgen).
type Load struct {
	Sink           string        `yaml:"sink" doc:"a sink named by a setup step, e.g. receiver/perf"`
	URL            string        `yaml:"url" doc:"the sink's URL, instead of sink"`
	Pace           string        `yaml:"pace" doc:"rps:duration[,…]; load: the run's pace by default; warmup: the run's first rate for 10s"`
	PayloadBytes   int           `yaml:"payloadBytes" doc:"data bytes per event (default 8192)"`
	InFlight       int           `yaml:"inFlight" doc:"the most sends in flight; an event that finds them all busy is dropped and counted (default: peak rate × requestTimeout)"`
	RequestTimeout time.Duration `yaml:"requestTimeout" doc:"per send (default 5s)"`
	Senders        int           `yaml:"senders" doc:"HTTP clients with their own connections (default 1)"`
	Connections    int           `yaml:"connections" doc:"the most connections per sender; a send that finds them all busy waits, and the wait counts in its latency (default: inFlight/senders, at most 1024)"`
	DrainTimeout   time.Duration `yaml:"drainTimeout" doc:"how long to wait after the last send for accepted events to arrive (default 30s)"`
	ProbeTimeout   time.Duration `yaml:"probeTimeout" doc:"how long the probe event may take to make the round trip before the first event (default 30s)"`
	GC             string        `yaml:"gc" doc:"normal (default), or between-steps: Go GC off during a pace step, a collection at each boundary"`
	MaxSendLag     time.Duration `yaml:"maxSendLag" doc:"a pace step whose send-lag p99 exceeds this is flagged as generator-saturated (default 5ms)"`
	SendOnly       bool          `yaml:"sendOnly" doc:"the sink does not deliver to the run's receivers (an ingress reachable from outside, a plain HTTP service): the probe waits for its HTTP answer only, nothing is drained, and deliveries, losses and end-to-end latencies are not measured"`
	Agents         int           `yaml:"agents" doc:"agents that share the load, each sending every N-th event from one start instant; on local, child processes of the runner (default 0: the runner sends); on kubernetes, the first N pods of the run's perf-agents releases (default 0: all of them)"`
	Tick           time.Duration `yaml:"tick" doc:"the pacer wakes at most once per tick and sends the events due since; an event's send starts at most a tick after its intended time (default 500µs; a tick shorter than the events' interval, e.g. 1ns, wakes for every event at its own time)"`
	Profiles       []Profile     `yaml:"profiles" doc:"pprof profiles to take during chosen pace steps, into the run's profiles/ directory"`

	phase string
}

// Bounds on a load's knobs: far above what one runner sends, low enough
// that arithmetic on them cannot overflow. The memory they need is checked
// against the run's budget apart (see measure.CheckMemory).
const (
	maxPayloadBytes = 16 << 20
	maxInFlight     = 10_000_000
	maxConnections  = 65_535 // one runner's ports toward one sink
	maxLoadTimeout  = time.Hour
	maxAgents       = 64
)

// Validate checks the spec's fields on their own.
func (l *Load) Validate() []FieldError {
	var errs []FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case l.Sink == "" && l.URL == "":
		bad("", "needs a sink (e.g. sink: receiver/perf) or a url")
	case l.Sink != "" && l.URL != "":
		bad("url", "give sink or url, not both")
	case l.URL != "":
		if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != loadgen.KafkaScheme) || u.Host == "" {
			bad("url", "%q is not an http:// or https:// URL", redact.String(l.URL))
		}
	}
	if l.SendOnly && l.Sink != "" {
		if kind, _, _ := strings.Cut(l.Sink, "/"); kind == "receiver" {
			bad("sendOnly", "sink %s is the run's own receiver, which sees every event: sendOnly is for sinks that do not deliver to it", l.Sink)
		}
	}
	if l.Pace != "" {
		if _, err := pace.Parse(l.Pace); err != nil {
			bad("pace", "%v", err)
		}
	}
	if l.PayloadBytes < 0 || l.PayloadBytes > maxPayloadBytes {
		bad("payloadBytes", "must be between 0 and %d", maxPayloadBytes)
	}
	for field, v := range map[string][2]int{"inFlight": {l.InFlight, maxInFlight}, "connections": {l.Connections, maxConnections}} {
		switch {
		case v[0] < 0:
			bad(field, "must be positive")
		case v[0] > v[1]:
			bad(field, "%d is above the bound of %d", v[0], v[1])
		}
	}
	if l.Agents < 0 || l.Agents > maxAgents {
		bad("agents", "must be between 0 and %d", maxAgents)
	}
	if l.Senders < 0 || l.Senders > 64 {
		bad("senders", "must be between 1 and 64")
	}
	for field, d := range map[string]time.Duration{"requestTimeout": l.RequestTimeout, "drainTimeout": l.DrainTimeout, "probeTimeout": l.ProbeTimeout, "maxSendLag": l.MaxSendLag, "tick": l.Tick} {
		switch {
		case d < 0:
			bad(field, "must be positive")
		case d > maxLoadTimeout:
			bad(field, "%s is above the bound of %s", d, maxLoadTimeout)
		}
	}
	switch l.GC {
	case "", "normal", "between-steps":
	default:
		bad("gc", "must be normal or between-steps, not %q", l.GC)
	}
	errs = append(errs, validateProfiles(l.Profiles)...)
	return errs
}

// schedule returns the pace this step sends in a run whose pace is run.
func (l *Load) schedule(run []pace.Step) ([]pace.Step, error) {
	if l.Pace != "" {
		return pace.Parse(l.Pace)
	}
	if len(run) == 0 {
		return nil, fmt.Errorf("no pace: the scenario has no pace set and the step gives none")
	}
	if l.phase == "warmup" {
		return []pace.Step{{RPS: run[0].RPS, Duration: 10 * time.Second}}, nil
	}
	return run, nil
}

// Plan returns the pace the step sends in a run whose pace is run, and
// the longest its drain may take after it.
func (l *Load) Plan(run []pace.Step) ([]pace.Step, time.Duration, error) {
	steps, err := l.schedule(run)
	return steps, drainTimeout(l.DrainTimeout), err
}

// Expected returns the pace's length (the drain comes on top).
func (l *Load) Expected(env *Env) time.Duration {
	steps, err := l.schedule(env.Shared.Info.Pace)
	if err != nil {
		return 0
	}
	return pace.Pace{Steps: steps}.Duration()
}

// Run sends the pace and prints a table of its steps.
func (l *Load) Run(ctx context.Context, env *Env) error {
	steps, err := l.schedule(env.Shared.Info.Pace)
	if err != nil {
		return err
	}
	url := l.URL
	if l.Sink != "" {
		if url, err = env.Shared.Sink(l.Sink); err != nil {
			return err
		}
	}
	m, err := env.Shared.Measurement()
	if err != nil {
		return err
	}
	load := l.load(filepath.Base(env.StepDir), steps, url)
	var failures, dropped int64
	counted := int64(math.MinInt64) // the last second added to them
	load.OnSecond = func(st measure.Status) {
		c := st.Last.Counts
		if st.Last.Second > counted {
			failures += c.SendFailures
			dropped += c.Dropped
			counted = st.Last.Second
		}
		env.Live(LoadStatus{
			Phase: l.phase, Step: st.Step + 1, Steps: len(steps), TargetRPS: st.TargetRPS, Second: st.Last.Second,
			Sent: c.Sent, Delivered: c.Delivered, SendFailures: c.SendFailures, Dropped: c.Dropped,
			PublishP99MS: st.Last.PublishP99MS, E2EP99MS: st.Last.E2EP99MS, SendOnly: l.SendOnly,
			TotalSendFailures: failures, TotalDropped: dropped,
			Elapsed: st.Elapsed, Total: st.Total, ElapsedSeconds: st.Elapsed.Seconds(), TotalSeconds: st.Total.Seconds(),
		})
	}
	switch agents, err := l.agents(env, url); {
	case err != nil:
		return err
	case agents != nil:
		load.Open = agent.Opener(agents)
		env.Log.Info("sent by agents", "agents", len(agents))
	case l.Agents > 0:
		local, err := agent.StartLocal(ctx, l.Agents)
		if err != nil {
			return err
		}
		defer local.Stop()
		load.Open = agent.Opener(local.Clients)
		env.Log.Info("agents started", "agents", len(local.Clients))
	}
	load.Observer = env.Shared.observer()
	load.OnNote = env.Status
	profiles, err := newProfileRun(ctx, env, l.Profiles, steps)
	if err != nil {
		return err
	}
	if profiles != nil {
		load.OnStart = profiles.begin
	}
	env.Log.Info("load starting", "phase", l.phase, "url", redact.String(url), "pace", pace.Pace{Steps: steps}.Duration().String())
	res, runErr := m.Run(ctx, load)
	if profiles != nil {
		profiles.wait(runErr != nil)
	}
	printSteps(env, m, res.Steps)
	printResources(env, m, res.Steps)
	for _, p := range res.Parts {
		fmt.Fprintf(env.Output, "  agent %s: %s; %d events of its part counted as dropped\n", p.Agent, p.Error, p.Dropped)
	}
	for _, a := range res.Agents {
		if a.FellBehind {
			fmt.Fprintf(env.Output, "  agent %s fell behind: send-lag p99 %.3f ms over its %d sends (maxSendLag %s)\n", a.Agent, a.SendLagP99MS, a.Sends, maxSendLag(l.MaxSendLag))
		}
	}
	for _, e := range res.TopErrors() {
		fmt.Fprintf(env.Output, "  send errors: %s\n", e)
	}
	if !res.Drained && runErr == nil && len(res.Steps) > 0 {
		fmt.Fprintf(env.Output, "  drain: some accepted events had not arrived after %s; they count as lost\n", drainTimeout(l.DrainTimeout))
	}
	return runErr
}

// agents returns the agent pods that send the step on a cluster, or nil
// when this process sends it or starts agents of its own (local). On a
// cluster, the run's agents send to addresses inside it: all of them when
// agents is 0, else the first N. A sink that a port-forward reaches
// (service/, pod/) is sent to from this process.
func (l *Load) agents(env *Env, url string) ([]*agent.Client, error) {
	if env.Shared.Info.Target == target.Local {
		return nil, nil
	}
	forwarded := false
	if l.Sink != "" {
		if s, err := target.ParseSink(l.Sink); err == nil && (s.Kind == target.SinkService || s.Kind == target.SinkPod) {
			forwarded = true
		}
	}
	pods := env.Shared.agentClients()
	switch {
	case forwarded && l.Agents > 0:
		return nil, fmt.Errorf("sink %s is reached by a port-forward from this machine, which agents in the cluster cannot use: name the sink they reach (receiver/, channel/, broker/) or a url", l.Sink)
	case forwarded:
		return nil, nil
	case len(pods) == 0 && l.Agents > 0:
		return nil, fmt.Errorf("agents: %d on %s: the run has no agents; install the perf-agents chart in a setup step first", l.Agents, env.Shared.Info.Target)
	case len(pods) == 0:
		if strings.Contains(url, ".svc.cluster.local") {
			return nil, fmt.Errorf("sink %s is an address inside the cluster (%s), which only agents reach: install the perf-agents chart in a setup step first", l.Sink, redact.String(url))
		}
		return nil, nil
	case l.Agents > len(pods):
		return nil, fmt.Errorf("agents: %d, but the run's agents releases have %d pods: raise their replicas", l.Agents, len(pods))
	case l.Agents > 0:
		return pods[:l.Agents], nil
	}
	return pods, nil
}

// load returns what the measurement runs for this step.
func (l *Load) load(name string, steps []pace.Step, url string) measure.Load {
	return measure.Load{
		Config: loadgen.Config{
			Name:           name,
			Pace:           steps,
			URL:            url,
			PayloadBytes:   l.PayloadBytes,
			InFlight:       l.InFlight,
			RequestTimeout: l.RequestTimeout,
			Senders:        l.Senders,
			Connections:    l.Connections,
			ProbeTimeout:   l.ProbeTimeout,
			GCBetweenSteps: l.GC == "between-steps",
			Tick:           l.Tick,
		},
		SendOnly:     l.SendOnly,
		Phase:        l.phase,
		DrainTimeout: l.DrainTimeout,
		MaxSendLag:   l.MaxSendLag,
	}
}

// Memory estimates what the step needs in a run whose pace is run; false
// when it has no pace to send.
func (l *Load) Memory(run []pace.Step) (measure.Memory, bool) {
	steps, err := l.schedule(run)
	if err != nil {
		return measure.Memory{}, false
	}
	return measure.MemoryOf(l.load("", steps, l.URL)), true
}

// printSteps writes one line per pace step of this load.
func printSteps(env *Env, m *measure.Measurement, spans []int) {
	if len(spans) == 0 {
		return
	}
	const header = "  %-7s %8s %9s %9s %7s %7s %6s %5s | %9s %9s %9s | %9s %9s %9s | %8s\n"
	fmt.Fprintf(env.Output, header,
		"phase", "target", "sent", "deliv", "dropped", "failed", "lost", "dup",
		"pub p50", "pub p99", "pub p9999", "e2e p50", "e2e p99", "e2e p9999", "lag p99")
	// Every figure with its unit, on a line of its own so that the columns
	// stay narrow.
	fmt.Fprintf(env.Output, header, "", "events/s", "events/s", "events/s", "events", "events", "events", "ev",
		"ms", "ms", "ms", "ms", "ms", "ms", "ms")
	for _, idx := range spans {
		s := m.Step(idx)
		flag := ""
		if s.GeneratorSaturated {
			flag = "  generator saturated"
		}
		if s.ClockUncertain {
			flag += "  e2e across agents' clocks known to no better than a tenth of its p99"
		}
		delivered, lost, dup := fmt.Sprintf("%.1f", s.DeliveredRPS), fmt.Sprint(s.Lost), fmt.Sprint(s.Duplicates)
		if s.SendOnly {
			delivered, lost, dup = "—", "—", "—"
		}
		fmt.Fprintf(env.Output, "  %-7s %8g %9.1f %9s %7d %7d %6s %5s | %9.3f %9.3f %9.3f | %9s %9s %9s | %8.3f%s\n",
			s.Phase, s.TargetRPS, s.AchievedSendRPS, delivered, s.Dropped, s.SendFailures, lost, dup,
			s.PublishMS.P50, s.PublishMS.P99, s.PublishMS.P9999, results.FormatMS(s.E2E(results.P50)), results.FormatMS(s.E2E(results.P99)), results.FormatMS(s.E2E(results.P9999)), s.SendLagMS.P99, flag)
	}
}

// printResources writes, per pace step of this load, the CPU and memory of
// the observed groups and of their busiest containers.
func printResources(env *Env, m *measure.Measurement, spans []int) {
	if len(spans) == 0 {
		return
	}
	info := m.Summary().Resources
	if info == nil {
		return
	}
	if info.Unavailable != "" {
		fmt.Fprintf(env.Output, "  resources: not measured: %s\n", info.Unavailable)
		return
	}
	type row struct {
		s     results.StepSummary
		f     results.ResourceFigures
		label string
	}
	var rows []row
	width := len("CPU and memory")
	for _, idx := range spans {
		s := m.Step(idx)
		for _, f := range s.Resources.Notable(0.05, 5) {
			label := f.Label()
			if f.Pod != "" {
				label = "  " + label
			}
			if r := []rune(label); len(r) > 64 {
				label = string(r[:63]) + "…"
			}
			width = max(width, utf8.RuneCountInString(label))
			rows = append(rows, row{s, f, label})
		}
	}
	if len(rows) == 0 {
		fmt.Fprintf(env.Output, "  resources: no reading covered these pace steps (%s)\n", info.Source)
		return
	}
	header := fmt.Sprintf("  %%-7s %%8s  %%-%ds %%9s %%9s %%9s %%9s\n", width)
	fmt.Fprintf(env.Output, header, "phase", "target", "CPU and memory", "CPU", "CPU/event", "memory", "growth")
	fmt.Fprintf(env.Output, header, "", "events/s", "", "cores", "µs", "MiB", "MiB")
	line := fmt.Sprintf("  %%-7s %%8g  %%-%ds %%9.3f %%9s %%9.1f %%+9.1f\n", width)
	for _, r := range rows {
		fmt.Fprintf(env.Output, line, r.s.Phase, r.s.TargetRPS, r.label, r.f.CPUCores, r.f.FormatPerEvent(), r.f.MemoryMiB, r.f.MemoryGrowthMiB)
	}
	if info.Failed != "" {
		fmt.Fprintf(env.Output, "  resources: a reading failed: %s\n", info.Failed)
	}
}

// maxSendLag is the send lag above which a load step's sender is behind:
// its own, or the default.
func maxSendLag(d time.Duration) time.Duration {
	if d == 0 {
		return measure.DefaultMaxSendLag
	}
	return d
}

// drainTimeout is the drain a load step waits: its own, or the default.
func drainTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return measure.DefaultDrainTimeout
	}
	return d
}
