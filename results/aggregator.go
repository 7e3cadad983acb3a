package results

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Metric names one of the latency distributions an event feeds.
type Metric int

// The latency metrics, each in milliseconds.
const (
	Publish Metric = iota // acknowledgement − intended send time
	E2E                   // receipt at the sink − intended send time
	SendLag               // actual send start − intended send time
	Service               // acknowledgement − actual send start
	numMetrics
)

var metricNames = [numMetrics]string{"publish", "e2e", "send_lag", "service"}

func (m Metric) String() string { return metricNames[m] }

// Counts are the event counters of one bucket.
type Counts struct {
	Intended     int64 `json:"intended"`      // events the pace scheduled
	Sent         int64 `json:"sent"`          // sends started
	SendFailures int64 `json:"send_failures"` // sends that errored, timed out or got a non-2xx answer
	Dropped      int64 `json:"dropped"`       // events that could not start: the in-flight cap was reached
	Accepted     int64 `json:"accepted"`      // sends acknowledged with a 2xx
	Delivered    int64 `json:"delivered"`     // first receipts at the sink
	Duplicates   int64 `json:"duplicates"`    // receipts after the first
	NegativeE2E  int64 `json:"negative_e2e"`  // receipts timed before their intended send (clock skew between hosts)
}

func (c *Counts) add(o Counts) {
	c.Intended += o.Intended
	c.Sent += o.Sent
	c.SendFailures += o.SendFailures
	c.Dropped += o.Dropped
	c.Accepted += o.Accepted
	c.Delivered += o.Delivered
	c.Duplicates += o.Duplicates
	c.NegativeE2E += o.NegativeE2E
}

// bucket is the counters and digests of one second, pace step or phase.
type bucket struct {
	Counts
	digests [numMetrics]*Digest
	samples *samples // raw latencies, for seconds only
}

// SamplesPerSecond bounds the raw latencies kept per second and metric for
// the points graph.
const SamplesPerSecond = 100

// sample is one raw latency: its intended time on the timeline's axis and
// its value.
type sample struct {
	atS float64
	ms  float64
}

// samples is a reservoir (Algorithm R) of a second's publish and e2e
// latencies: a uniform sample of at most SamplesPerSecond each.
type samples struct {
	seen [2]int64
	kept [2][]sample
}

func (s *samples) add(rng *rand.Rand, which int, x sample) {
	s.seen[which]++
	if len(s.kept[which]) < SamplesPerSecond {
		s.kept[which] = append(s.kept[which], x)
		return
	}
	if j := rng.Int64N(s.seen[which]); j < SamplesPerSecond {
		s.kept[which][j] = x
	}
}

func (s *samples) reset() {
	s.seen = [2]int64{}
	s.kept[0], s.kept[1] = s.kept[0][:0], s.kept[1][:0]
}

func newBucket() *bucket {
	w := &bucket{}
	for i := range w.digests {
		w.digests[i] = NewDigest()
	}
	return w
}

func (w *bucket) reset() {
	w.Counts = Counts{}
	for _, d := range w.digests {
		d.Reset()
	}
	if w.samples != nil {
		w.samples.reset()
	}
}

// Span is one pace step as run: its phase, target rate and the interval of
// intended send times it covers.
type Span struct {
	Phase     string        `json:"phase"` // "warmup" or "measure"
	Index     int           `json:"index"` // within its phase, from 0
	TargetRPS float64       `json:"target_rps"`
	Start     time.Time     `json:"start"`
	Duration  time.Duration `json:"duration_ns"`
}

func (s Span) end() time.Time { return s.Start.Add(s.Duration) }

// Meta names the run a recorder belongs to.
type Meta struct {
	Scenario string
	PaceSet  string
	Target   string
}

// Aggregator adds up what a run measures, in memory and with no I/O: the
// counters and digests of every second, pace step and phase. Its memory
// depends on the number of pace steps and on how many seconds are open at
// once, not on the number of events: a closed second is handed to its
// consumer (CloseBefore) and recycled (Recycle). It is safe for concurrent
// use.
type Aggregator struct {
	meta Meta

	mu         sync.Mutex // guards the buckets
	bufMu      sync.Mutex // guards buf, the records not yet applied
	buf        []record
	spare      []record // the other buffer, reused; guarded by mu
	stop       chan struct{}
	stopped    chan struct{}
	spans      []Span
	steps      []*bucket // parallel to spans
	extra      []StepExtra
	notRun     []bool // parallel to spans: the load stopped before the step began
	phases     map[string]*bucket
	origin     time.Time // the first span's start: second 0 of the timeline
	open       map[int64]*bucket
	closed     int64 // seconds below this are closed
	free       []*bucket
	late       int64       // records for seconds already closed
	outOfRange int64       // receipts that matched no event sent
	afterDrain int64       // receipts after their drain
	agents     []AgentPart // the parts of loads agents sent
	thresholds []Threshold
	rng        *rand.Rand // for the reservoirs; guarded by mu
	res        *ResourceSet
	resInfo    *ResourceInfo
}

// StepExtra is what the load generator knows about a pace step that the
// recorder cannot see: exact losses and whether the generator kept up.
type StepExtra struct {
	Lost               int64 `json:"lost"`
	DeliveredUnacked   int64 `json:"delivered_unacknowledged"`
	GeneratorSaturated bool  `json:"generator_saturated"`
	// SendOnly is a step of a load whose sink does not deliver to the
	// run's receivers: nothing can be delivered, lost or timed end to end.
	SendOnly bool `json:"send_only,omitempty"`
	// ClockUncertain is a step sent by agents whose clocks are known
	// less well than a tenth of its end-to-end p99: its end-to-end
	// figures cross clocks known no better (see Summary.Agents).
	ClockUncertain bool `json:"clock_uncertain,omitempty"`
}

// NewAggregator returns an empty aggregator for the run meta names. Close
// stops the goroutine that applies its records.
func NewAggregator(meta Meta) *Aggregator {
	a := &Aggregator{
		meta:    meta,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)),
		phases:  map[string]*bucket{},
		open:    map[int64]*bucket{},
		closed:  math.MinInt64,
		res:     NewResourceSet(),
	}
	go a.aggregate(a.stop, a.stopped)
	return a
}

// Close applies the records still queued and stops applying new ones.
func (r *Aggregator) Close() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	<-r.stopped
	r.mu.Lock()
	r.applyPending()
	r.mu.Unlock()
}

// BeginStep registers a pace step before its first event and returns its
// index among all steps.
func (r *Aggregator) BeginStep(s Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		r.origin = s.Start
		r.closed = 0
	}
	r.spans = append(r.spans, s)
	r.steps = append(r.steps, newBucket())
	r.extra = append(r.extra, StepExtra{})
	r.notRun = append(r.notRun, false)
	if r.phases[s.Phase] == nil {
		r.phases[s.Phase] = newBucket()
	}
	return len(r.spans) - 1
}

// SetThresholds sets the scenario's thresholds: per-step ones take part in
// each step's verdict, and every breach is listed in the summary.
func (r *Aggregator) SetThresholds(ts []Threshold) {
	r.mu.Lock()
	r.thresholds = ts
	r.mu.Unlock()
}

// AddAgentParts records the parts of a load that agents sent.
func (r *Aggregator) AddAgentParts(parts ...AgentPart) {
	r.mu.Lock()
	r.agents = append(r.agents, parts...)
	r.mu.Unlock()
}

// AddResources adds readings of the observed containers' counters and
// returns the second of the timeline's axis each was taken at. Readings
// before the first pace step began have no place on it and are left out
// (their second is NaN).
func (r *Aggregator) AddResources(samples []ResourceSample) []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := make([]float64, len(samples))
	for i, s := range samples {
		if len(r.spans) == 0 {
			at[i] = math.NaN()
			continue
		}
		at[i] = s.At.Sub(r.origin).Seconds()
		r.res.Add(at[i], s)
	}
	return at
}

// SetResourceInfo records where the resource figures come from, or why
// there are none.
func (r *Aggregator) SetResourceInfo(info ResourceInfo) {
	r.mu.Lock()
	r.resInfo = &info
	r.mu.Unlock()
}

// SetLateReceipts records how many receipts matched no event sent, and how
// many arrived after their load's drain (their events count as lost).
func (r *Aggregator) SetLateReceipts(outOfRange, afterDrain int64) {
	r.mu.Lock()
	r.outOfRange, r.afterDrain = outOfRange, afterDrain
	r.mu.Unlock()
}

// AlignStart returns the first instant at or after t that falls on a whole
// second of the timeline, so that pace steps of whole seconds fill whole
// rows. Before the first step, t itself is returned.
func (r *Aggregator) AlignStart(t time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		return t
	}
	since := t.Sub(r.origin)
	if rem := since % time.Second; rem != 0 {
		since += time.Second - rem
	}
	return r.origin.Add(since)
}

// StopSteps records that the load owning steps stopped early at stop: a
// step cut short is judged over the time it ran, a step that never began
// is "not-run" and takes no part in verdicts or thresholds.
func (r *Aggregator) StopSteps(steps []int, stop time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range steps {
		switch s := &r.spans[i]; {
		case !stop.After(s.Start):
			r.notRun[i] = true
		case stop.Before(s.end()):
			s.Duration = stop.Sub(s.Start)
		}
	}
}

// SetStepExtra records what the generator learnt about step i after drain.
func (r *Aggregator) SetStepExtra(i int, e StepExtra) {
	r.mu.Lock()
	r.extra[i] = e
	r.mu.Unlock()
}

// locate returns the buckets an event with intended time ti (Unix ns) feeds:
// its second (nil when already closed), its step and its phase. Callers hold
// r.mu.
func (r *Aggregator) locate(ti int64) (sec, step, phase *bucket) {
	i := len(r.spans) - 1
	for i > 0 && r.spans[i].Start.UnixNano() > ti {
		i--
	}
	if i < 0 {
		return nil, nil, nil
	}
	s := int64(math.Floor(float64(ti-r.origin.UnixNano()) / 1e9))
	if s >= r.closed {
		sec = r.open[s]
		if sec == nil {
			sec = r.newSecond()
			r.open[s] = sec
		}
	} else {
		r.late++
	}
	return sec, r.steps[i], r.phases[r.spans[i].Phase]
}

func (r *Aggregator) newSecond() *bucket {
	if n := len(r.free); n > 0 {
		w := r.free[n-1]
		r.free = r.free[:n-1]
		return w
	}
	w := newBucket()
	w.samples = &samples{}
	return w
}

// each applies f to every bucket an event feeds.
func (r *Aggregator) each(ti int64, f func(w *bucket)) {
	sec, step, phase := r.locate(ti)
	for _, w := range [...]*bucket{sec, step, phase} {
		if w != nil {
			f(w)
		}
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// record is one event measurement waiting to be applied to the buckets.
type record struct {
	op       recordOp
	ti, a, b int64 // intended time, then per op: started and ack, or received
	flag     bool  // ok for sends, duplicate for receipts
}

type recordOp uint8

const (
	opIntended recordOp = iota
	opDropped
	opSendDone
	opDelivered
)

// applyEvery is how often the aggregator applies buffered records.
const applyEvery = 5 * time.Millisecond

// push queues a record. It is the only work the senders and the receiver
// do for the recorder: a short lock and an append, so that the digests'
// occasional sorting of their buffers never stalls the load path.
func (r *Aggregator) push(x record) {
	r.bufMu.Lock()
	r.buf = append(r.buf, x)
	r.bufMu.Unlock()
}

// applyPending applies every queued record. Callers hold r.mu.
func (r *Aggregator) applyPending() {
	r.bufMu.Lock()
	batch := r.buf
	r.buf = r.spare[:0]
	r.bufMu.Unlock()
	for _, x := range batch {
		r.apply(x)
	}
	r.spare = batch
}

// aggregate applies queued records until stop is closed.
func (r *Aggregator) aggregate(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(applyEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.mu.Lock()
			r.applyPending()
			r.mu.Unlock()
		}
	}
}

// Intended counts an event the pace scheduled at ti (Unix ns).
func (r *Aggregator) Intended(ti int64) { r.push(record{op: opIntended, ti: ti}) }

// Dropped counts an event that could not start.
func (r *Aggregator) Dropped(ti int64) { r.push(record{op: opDropped, ti: ti}) }

// SendDone records a finished send: started and ack are Unix ns; ok is
// whether the sink acknowledged it with a 2xx.
func (r *Aggregator) SendDone(ti, started, ack int64, ok bool) {
	r.push(record{op: opSendDone, ti: ti, a: started, b: ack, flag: ok})
}

// Delivered records a receipt at the sink at received (Unix ns) of an event
// intended at ti; duplicate receipts are counted and not timed.
func (r *Aggregator) Delivered(ti, received int64, duplicate bool) {
	r.push(record{op: opDelivered, ti: ti, a: received, flag: duplicate})
}

// apply adds one record to the buckets it feeds. Callers hold r.mu.
func (r *Aggregator) apply(x record) {
	ti := x.ti
	switch x.op {
	case opIntended:
		r.each(ti, func(w *bucket) { w.Intended++ })
	case opDropped:
		r.each(ti, func(w *bucket) { w.Dropped++ })
	case opSendDone:
		started, ack := x.a, x.b
		r.each(ti, func(w *bucket) {
			w.Sent++
			w.digests[SendLag].Add(ms(started - ti))
			if !x.flag {
				w.SendFailures++
				return
			}
			w.Accepted++
			w.digests[Publish].Add(ms(ack - ti))
			w.digests[Service].Add(ms(ack - started))
			if w.samples != nil {
				w.samples.add(r.rng, 0, sample{atS: ms(ti-r.origin.UnixNano()) / 1000, ms: ms(ack - ti)})
			}
		})
	case opDelivered:
		received := x.a
		r.each(ti, func(w *bucket) {
			if x.flag {
				w.Duplicates++
				return
			}
			w.Delivered++
			if received < ti {
				w.NegativeE2E++
			}
			w.digests[E2E].Add(ms(received - ti))
			if w.samples != nil {
				w.samples.add(r.rng, 1, sample{atS: ms(ti-r.origin.UnixNano()) / 1000, ms: ms(received - ti)})
			}
		})
	}
}

// Live is the last complete second as it stands, for a progress view.
type Live struct {
	Second       int64
	Counts       Counts
	PublishP99MS float64
	E2EP99MS     float64
}

// Live returns the second before the one now falls in. Its receipts may
// still be arriving.
func (r *Aggregator) Live(now time.Time) Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	s := int64(math.Floor(float64(now.Sub(r.origin))/1e9)) - 1
	w := r.open[s]
	if len(r.spans) == 0 || w == nil {
		return Live{Second: s}
	}
	return Live{Second: s, Counts: w.Counts, PublishP99MS: w.digests[Publish].Quantile(0.99), E2EP99MS: w.digests[E2E].Quantile(0.99)}
}

// StepQuantile returns the q-quantile of metric m in pace step i, in ms.
func (r *Aggregator) StepQuantile(i int, m Metric, q float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	return r.steps[i].digests[m].Quantile(q)
}
