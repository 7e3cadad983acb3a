package measure

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/results"
)

// Load is one load of a run: what loadgen sends, and how the measurement
// drains and judges it.
type Load struct {
	loadgen.Config
	Phase        string        // "warmup" or "measure"
	DrainTimeout time.Duration // how long to wait after the last send for accepted events to arrive; default 30s
	MaxSendLag   time.Duration // a pace step whose send-lag p99 exceeds this is flagged: the generator could not keep up; default 5ms
	StartDelay   time.Duration // from the probe's return to the first intended send; default 200ms
	// SendOnly is for sinks that do not deliver to the run's receivers (an
	// ingress reachable from outside, a plain HTTP service, a receiver in
	// another process): the probe waits for the sink's HTTP answer only,
	// nothing is drained, and the steps are marked send-only, with no
	// deliveries, losses or end-to-end latencies.
	SendOnly bool
	// OnSecond, when set, is called about once a second with the live state.
	OnSecond func(Status)
	// Observer, when set, reads the CPU and memory of the systems under
	// test every second from just before the first pace step until the
	// readings pass the last one's end.
	Observer results.ResourceReader
	// OnNote, when set, shows what the load waits for after its drain.
	OnNote func(string)
	// OnStart, when set, is called with the instant the first pace step
	// begins, once it is fixed and before the first event.
	OnStart func(start time.Time)
	// Open returns what sends the load: nil, a loadgen.Load in this
	// process; the agent package's, agents in other processes or pods.
	Open func(loadgen.Config) (Generator, error)
}

// Generator sends a load's events and reports each as loadgen.Records:
// loadgen.Load in this process, or agents elsewhere.
type Generator interface {
	Config() loadgen.Config // with its defaults filled in
	Events() int64          // how many events the pace schedules
	// Probe sends probe events until one comes back on arrived;
	// ProbeAnswer until the sink acknowledges one.
	Probe(ctx context.Context, arrived <-chan string) error
	ProbeAnswer(ctx context.Context) error
	// Warm opens the connections the first events need.
	Warm(ctx context.Context)
	// Run sends the pace from start, reporting every event to out.
	Run(ctx context.Context, start time.Time, out loadgen.Output) (loadgen.Result, error)
	Close()
}

func openLocal(cfg loadgen.Config) (Generator, error) { return loadgen.New(cfg) }

// clockTolerance is the share of a step's end-to-end p99 that the clock
// uncertainty of the agents that sent it may reach before the step's
// end-to-end figures are flagged.
const clockTolerance = 0.1

// DefaultMaxSendLag is the send lag of a load that gives no MaxSendLag.
const DefaultMaxSendLag = 5 * time.Millisecond

// DefaultDrainTimeout is a load's drain when it gives none.
const DefaultDrainTimeout = 30 * time.Second

func (l Load) withDefaults() Load {
	if l.DrainTimeout == 0 {
		l.DrainTimeout = DefaultDrainTimeout
	}
	if l.MaxSendLag == 0 {
		l.MaxSendLag = DefaultMaxSendLag
	}
	if l.StartDelay == 0 {
		l.StartDelay = 200 * time.Millisecond
	}
	return l
}

// Status is the live state of a load, for a progress view.
type Status struct {
	Step      int // pace step, from 0
	TargetRPS float64
	Last      results.Live
	Elapsed   time.Duration
	Total     time.Duration
}

// Result is what a load learnt beyond what its figures say.
type Result struct {
	loadgen.Result
	Steps   []int // the measurement's indexes of the load's pace steps (see Step)
	Drained bool  // every accepted event arrived before the drain timeout
	// Agents are the parts of a load sent by agents: their clocks, how
	// they ended, whether they fell behind.
	Agents []results.AgentPart
}

// ErrFinished is the error of a load that starts after the measurement
// finished.
var ErrFinished = errors.New("the run's measurement is already closed: load steps belong in warmup and measure")

// Run sends l's pace and measures it. Before the first event, a probe
// makes the full round trip, so the receiver cannot miss the start. After
// the last, it waits for accepted events to arrive, then counts each pace
// step's lost events exactly. When ctx ends early, what was measured is kept
// and the error says so.
func (m *Measurement) Run(ctx context.Context, l Load) (Result, error) {
	m.mu.Lock()
	finished := m.finished
	m.mu.Unlock()
	if finished {
		return Result{}, ErrFinished
	}
	l = l.withDefaults()
	open := l.Open
	if open == nil {
		open = openLocal
	}
	gen, err := open(l.Config)
	if err != nil {
		return Result{}, err
	}
	defer gen.Close()
	cfg := gen.Config()
	stream := NewStream(cfg.Name, gen.Events())
	if l.SendOnly {
		if err := gen.ProbeAnswer(ctx); err != nil {
			return Result{}, err
		}
	} else {
		m.router.Register(stream)
		if err := gen.Probe(ctx, m.router.probes); err != nil {
			return Result{}, err
		}
	}

	gen.Warm(ctx)
	if c, ok := gen.(interface{ ClockOffsets() []time.Duration }); ok {
		stream.SetClockOffsets(c.ClockOffsets())
	}
	start := m.rec.AlignStart(time.Now().Add(l.StartDelay))
	var res Result
	firstSeq := make([]int64, len(cfg.Pace)+1)
	offset := time.Duration(0)
	for k, s := range cfg.Pace {
		idx := m.rec.BeginStep(results.Span{Phase: l.Phase, Index: k, TargetRPS: s.RPS, Start: start.Add(offset), Duration: s.Duration})
		m.rec.SetStepExtra(idx, results.StepExtra{SendOnly: l.SendOnly})
		res.Steps = append(res.Steps, idx)
		offset += s.Duration
		firstSeq[k+1] = firstSeq[k] + s.Events()
	}

	// The load's pace steps on disk before its first event, so that
	// runner cleanup can rebuild a killed run's figures from its seconds.
	if err := m.rec.WriteSummary(); err != nil {
		m.rec.StopSteps(res.Steps, start)
		return res, err
	}
	if l.OnStart != nil {
		l.OnStart(start)
	}
	note := l.OnNote
	if note == nil {
		note = func(string) {}
	}
	stopObserve := m.observe(ctx, l.Observer, start.Add(offset), note)
	stopStatus := m.status(l, cfg, start)
	loadCtx, stopWatch := m.watchRecorder(ctx)
	var runErr error
	res.Result, runErr = gen.Run(loadCtx, start, output{rec: m.rec, stream: stream})
	stopWatch()
	if !res.Stopped.IsZero() {
		m.rec.StopSteps(res.Steps, res.Stopped)
	}
	drainFor := l.DrainTimeout
	if runErr != nil {
		drainFor = min(drainFor, 2*time.Second)
	}
	if !l.SendOnly {
		res.Drained = drain(stream, drainFor)
		// Receipts that remote receivers took before the drain ended
		// are this load's, whether or not they were pulled yet.
		m.syncRemotes()
		if !res.Drained {
			lost, _ := stream.Tally(0, stream.n)
			res.Drained = lost == 0
		}
	}
	stopStatus()
	stopObserve()
	stream.tallied.Store(true)
	// A load sent by agents: their clocks and how their parts ended.
	var uncertainty float64
	for _, r := range m.remotes() {
		uncertainty = max(uncertainty, float64(r.Uncertainty())/1e6)
	}
	if ag, ok := gen.(interface{ AgentParts() []results.AgentPart }); ok {
		parts := ag.AgentParts()
		for k, p := range parts {
			uncertainty = max(uncertainty, p.UncertaintyMS)
			parts[k].FellBehind = p.SendLagP99MS > float64(l.MaxSendLag)/1e6
		}
		m.rec.AddAgentParts(parts...)
		res.Agents = parts
	}
	for k, idx := range res.Steps {
		var lost, unacked int64
		if !l.SendOnly {
			lost, unacked = stream.Tally(firstSeq[k], firstSeq[k+1])
		}
		m.rec.SetStepExtra(idx, results.StepExtra{
			Lost:               lost,
			DeliveredUnacked:   unacked,
			GeneratorSaturated: m.rec.StepQuantile(idx, results.SendLag, 0.99) > float64(l.MaxSendLag)/1e6,
			SendOnly:           l.SendOnly,
			ClockUncertain:     !l.SendOnly && uncertainty > clockTolerance*m.rec.StepQuantile(idx, results.E2E, 0.99),
		})
	}
	m.lateReceipts()
	if err := m.rec.WriteSummary(); err != nil && runErr == nil {
		// When the load failed, its own error says why; the measurement
		// writes the summary again when it finishes.
		return res, err
	}
	return res, runErr
}

// output feeds a load's records to the recorder and its acknowledgements
// to the load's stream.
type output struct {
	rec    *results.Recorder
	stream *Stream
}

func (o output) Add(r loadgen.Record) {
	switch r.Op {
	case loadgen.OpIntended:
		o.rec.Intended(r.Intended)
	case loadgen.OpDropped:
		o.rec.Dropped(r.Intended)
	case loadgen.OpSent:
		if r.OK {
			o.stream.Accepted(r.Seq)
		}
		o.rec.SendDone(r.Intended, r.Started, r.Answered, r.OK)
	}
}

// drain waits until every accepted event was delivered or limit passes.
func drain(s *Stream, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		lost, _ := s.Tally(0, s.n)
		if lost == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchRecorder returns a context that ends with ctx, or as soon as the
// recorder cannot write the timeline any more (a full disk): a load that
// goes on measures what no file will hold.
func (m *Measurement) watchRecorder(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := m.rec.Err(); err != nil {
					cancel(fmt.Errorf("the results cannot be written: %w", err))
					return
				}
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// status reports the load's live state once a second until the returned
// stop is called.
func (m *Measurement) status(l Load, cfg loadgen.Config, start time.Time) (stop func()) {
	if l.OnSecond == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	var total time.Duration
	for _, s := range cfg.Pace {
		total += s.Duration
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				st := Status{Elapsed: now.Sub(start), Total: total, Last: m.rec.Live(now)}
				// The live figures are the last whole second's: name its step.
				lastSecond := st.Elapsed - time.Second
				if lastSecond < 0 {
					continue
				}
				var at time.Duration
				for k, s := range cfg.Pace {
					if lastSecond >= at {
						st.Step, st.TargetRPS = k, s.RPS
					}
					at += s.Duration
				}
				l.OnSecond(st)
			}
		}
	}()
	return func() { close(done); <-finished }
}
