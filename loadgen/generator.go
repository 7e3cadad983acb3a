package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// Config describes one load: a pace sent to one sink.
type Config struct {
	Name           string        // the stream's name, unique in the run; event ids are Name-seq
	Phase          string        // "warmup" or "measure"
	Pace           []pace.Step   // the schedule
	Target         string        // the sink's URL: http(s):// for CloudEvents over HTTP, kafka://brokers/topic for records to a topic
	PayloadBytes   int           // data bytes per event
	InFlight       int           // the most sends in flight at once; 0: peak rate × request timeout
	RequestTimeout time.Duration // per send
	Senders        int           // HTTP clients, each with its own connections; events go round-robin
	Connections    int           // the most connections per sender; 0: min(InFlight/Senders, 1024)
	DrainTimeout   time.Duration // how long to wait after the last send for accepted events to arrive
	ProbeTimeout   time.Duration // how long a probe event may take to make the round trip
	GCBetweenSteps bool          // Go GC off during pace steps, a collection at each boundary
	MaxSendLag     time.Duration // a pace step whose send-lag p99 exceeds this is flagged: the generator could not keep up
	StartDelay     time.Duration // from the probe's return to the first intended send
	// SendOnly is for sinks whose receipts this process never sees (a
	// receiver in another process): no probe, no drain, no delivery
	// accounting; router may be nil.
	SendOnly bool
	// OnSecond, when set, is called about once a second with the live state.
	OnSecond func(Status)
}

// Status is the live state of a load, for a progress view.
type Status struct {
	Step      int // pace step, from 0
	TargetRPS float64
	Last      results.Live
	Elapsed   time.Duration
	Total     time.Duration
}

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.PayloadBytes == 0 {
		c.PayloadBytes = 8192
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Senders == 0 {
		c.Senders = 1
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 30 * time.Second
	}
	if c.MaxSendLag == 0 {
		c.MaxSendLag = 5 * time.Millisecond
	}
	if c.StartDelay == 0 {
		c.StartDelay = 200 * time.Millisecond
	}
	if c.InFlight == 0 {
		peak := 0.0
		for _, s := range c.Pace {
			peak = math.Max(peak, s.RPS)
		}
		c.InFlight = max(1, int(math.Ceil(peak*c.RequestTimeout.Seconds())))
	}
	if c.Connections == 0 {
		c.Connections = max(1, min(c.InFlight/c.Senders, 1024))
	}
	return c
}

// Result is what a load learnt beyond what the recorder holds.
type Result struct {
	Spans      []int          // the recorder's step indexes of the pace steps
	SendErrors map[string]int // distinct send errors (at most 10) and how often each occurred
	Drained    bool           // every accepted event arrived before the drain timeout
}

// Run sends cfg's pace to its target, recording into rec; receipts must
// reach rec through router (see NewRouter). Before the first event, a probe
// makes the full round trip, so the receiver cannot miss the start. After the
// last, it waits for accepted events to arrive, then counts each pace step's
// lost events exactly. When ctx ends early, what was measured is kept and
// the error says so.
func Run(ctx context.Context, cfg Config, rec *results.Recorder, router *Router) (Result, error) {
	cfg = cfg.withDefaults()
	var total int64
	for _, s := range cfg.Pace {
		total += s.Events()
	}
	stream := NewStream(cfg.Name, total)
	if !cfg.SendOnly {
		router.Register(stream)
	}

	senders := make([]sender, cfg.Senders)
	for i := range senders {
		s, err := newSender(cfg)
		if err != nil {
			return Result{}, err
		}
		defer s.Close()
		senders[i] = s
	}
	if !cfg.SendOnly {
		if err := probe(ctx, senders[0], router, cfg); err != nil {
			return Result{}, err
		}
	}

	start := rec.AlignStart(time.Now().Add(cfg.StartDelay))
	res := Result{SendErrors: map[string]int{}}
	firstSeq := make([]int64, len(cfg.Pace)+1)
	offset := time.Duration(0)
	for k, s := range cfg.Pace {
		res.Spans = append(res.Spans, rec.BeginStep(results.Span{Phase: cfg.Phase, Index: k, TargetRPS: s.RPS, Start: start.Add(offset), Duration: s.Duration}))
		offset += s.Duration
		firstSeq[k+1] = firstSeq[k] + s.Events()
	}

	var errMu sync.Mutex
	// Sends run on their own timeouts, off the run's context: thousands
	// of concurrent children of one cancellable context contend on its
	// lock, and a send in flight at an interrupt is allowed to finish.
	sendCtx := context.WithoutCancel(ctx)
	work := func(t Tick) {
		started := time.Now().UnixNano()
		ok, err := senders[t.Seq%int64(len(senders))].Send(sendCtx, stream.ID(t.Seq), t.Intended)
		ack := time.Now().UnixNano()
		if ok {
			stream.Accepted(t.Seq)
		} else {
			errMu.Lock()
			msg := errorKind(err)
			if _, seen := res.SendErrors[msg]; seen || len(res.SendErrors) < 10 {
				res.SendErrors[msg]++
			}
			errMu.Unlock()
		}
		rec.SendDone(t.Intended, started, ack, ok)
	}
	p := newPool(cfg.InFlight, work)

	restoreMemory := protectMemory()
	defer restoreMemory()
	restoreGC := func() {}
	if cfg.GCBetweenSteps {
		restoreGC = gcBetweenSteps(ctx, start, cfg.Pace)
	}
	stopTicker := tick(rec, cfg, start)
	paceErr := Pace(ctx, cfg.Pace, start, func(t Tick) {
		rec.Intended(t.Intended)
		if !p.submit(t) {
			rec.Dropped(t.Intended)
		}
	})
	if paceErr != nil {
		rec.StopSteps(res.Spans, time.Now())
	}
	restoreGC()
	p.close()

	drainFor := cfg.DrainTimeout
	if paceErr != nil {
		drainFor = min(drainFor, 2*time.Second)
	}
	if !cfg.SendOnly {
		res.Drained = drain(stream, drainFor)
	}
	stopTicker()
	stream.tallied.Store(true)
	for k, idx := range res.Spans {
		var lost, unacked int64
		if !cfg.SendOnly {
			lost, unacked = stream.Tally(firstSeq[k], firstSeq[k+1])
		}
		rec.SetStepExtra(idx, results.StepExtra{
			Lost:               lost,
			DeliveredUnacked:   unacked,
			GeneratorSaturated: rec.StepQuantile(idx, results.SendLag, 0.99) > float64(cfg.MaxSendLag)/1e6,
		})
	}
	if router != nil {
		rec.SetLateReceipts(router.OutOfRange(), router.AfterDrain())
	}
	if err := rec.WriteSummary(); err != nil {
		return res, err
	}
	if paceErr != nil {
		return res, fmt.Errorf("load stopped early: %w", context.Cause(ctx))
	}
	return res, nil
}

// probe sends probe events until one comes back through router.
func probe(parent context.Context, s sender, router *Router, cfg Config) error {
	ctx, cancel := context.WithTimeout(parent, cfg.ProbeTimeout)
	defer cancel()
	for n := 0; ; n++ {
		id := ProbePrefix + cfg.Name + "-" + strconv.Itoa(n)
		_, sendErr := s.Send(ctx, id, time.Now().UnixNano())
		wait := time.NewTimer(500 * time.Millisecond)
	waiting:
		for {
			select {
			case got := <-router.probes:
				if got == id {
					wait.Stop()
					return nil
				}
			case <-wait.C:
				break waiting
			case <-ctx.Done():
				wait.Stop()
				if parent.Err() != nil {
					return context.Cause(parent)
				}
				return fmt.Errorf("no probe event came back from %s within %s (last send: %v)", cfg.Target, cfg.ProbeTimeout, sendErr)
			}
		}
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

// tick closes the recorder's old seconds and reports progress once a second
// until the returned stop is called.
func tick(rec *results.Recorder, cfg Config, start time.Time) (stop func()) {
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
				_ = rec.Flush(now) // a write error surfaces at Close
				if cfg.OnSecond == nil {
					continue
				}
				st := Status{Elapsed: now.Sub(start), Total: total, Last: rec.Live(now)}
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
				cfg.OnSecond(st)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// protectMemory sets a soft memory limit of three quarters of the machine's
// memory, unless one is set already (GOMEMLIMIT), so that the GC works
// harder before the run is killed, whatever the GC mode; the returned
// function restores the previous limit.
func protectMemory() (restore func()) {
	old := debug.SetMemoryLimit(-1)
	if old != math.MaxInt64 {
		return func() {}
	}
	limit := int64(4 << 30)
	if total := memTotal(); total > 0 {
		limit = total / 4 * 3
	}
	debug.SetMemoryLimit(limit)
	return func() { debug.SetMemoryLimit(old) }
}

// memTotal returns the machine's memory in bytes, or 0 when unknown.
func memTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gcBetweenSteps turns the Go GC off and collects at each pace-step
// boundary (the memory limit still applies); the returned function restores
// the previous setting.
func gcBetweenSteps(ctx context.Context, start time.Time, steps []pace.Step) (restore func()) {
	oldPercent := debug.SetGCPercent(-1)
	stop := make(chan struct{})
	go func() {
		at := start
		for _, s := range steps {
			at = at.Add(s.Duration)
			select {
			case <-time.After(time.Until(at)):
				runtime.GC()
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(stop)
		debug.SetGCPercent(oldPercent)
	}
}

// errorKind shortens a send error to its kind, so that distinct errors can be
// counted without one entry per event.
func errorKind(err error) string {
	if err == nil {
		return "not acknowledged"
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "request timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// TopErrors lists the distinct send errors, most frequent first, each with
// its count.
func (r Result) TopErrors() []string {
	keys := make([]string, 0, len(r.SendErrors))
	for k := range r.SendErrors {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r.SendErrors[keys[i]] > r.SendErrors[keys[j]] })
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%d× %s", r.SendErrors[k], k)
	}
	return keys
}
