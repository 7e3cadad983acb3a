package results

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// Counts are the event counters of one window.
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

// window is the counters and digests of one second, pace step or phase.
type window struct {
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

func newWindow() *window {
	w := &window{}
	for i := range w.digests {
		w.digests[i] = NewDigest()
	}
	return w
}

func (w *window) reset() {
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

// Recorder collects what a run measures. Its memory depends on the number of
// pace steps and on how many seconds are open at once, not on the number of
// events: a second's digests are written to disk and recycled once the
// second is older than the close horizon. It is safe for concurrent use.
type Recorder struct {
	dir     string
	meta    Meta
	horizon time.Duration

	ioMu       sync.Mutex // serializes closing seconds: the files and cum
	mu         sync.Mutex // guards the windows; never held during I/O
	bufMu      sync.Mutex // guards buf, the records not yet applied
	buf        []record
	spare      []record // the other buffer, reused; guarded by mu
	stop       chan struct{}
	stopped    chan struct{}
	spans      []Span
	steps      []*window // parallel to spans
	extra      []StepExtra
	notRun     []bool // parallel to spans: the load stopped before the step began
	phases     map[string]*window
	origin     time.Time // the first span's start: second 0 of the timeline
	open       map[int64]*window
	closed     int64 // seconds below this are closed
	free       []*window
	late       int64 // records for seconds already closed
	outOfRange int64
	afterDrain int64 // receipts after their drain
	thresholds []Threshold
	rng        *rand.Rand             // for the reservoirs; guarded by mu
	samplesOut *os.File               // samples.tsv                  // receipts that matched no event sent
	cum        map[string]*[2]*Digest // running publish and e2e digests per phase, through the last closed second
	timeline   *os.File
	gzFile     *os.File
	gz         *gzip.Writer
	enc        *json.Encoder
}

// StepExtra is what the load generator knows about a pace step that the
// recorder cannot see: exact losses and whether the generator kept up.
type StepExtra struct {
	Lost               int64 `json:"lost"`
	DeliveredUnacked   int64 `json:"delivered_unacknowledged"`
	GeneratorSaturated bool  `json:"generator_saturated"`
}

// Files a recorder writes into the run directory.
const (
	TimelineFile = "timeline.tsv"
	SummaryFile  = "summary.json"
	DigestsFile  = "digests.json"            // per pace step and phase
	SecondsFile  = "second-digests.jsonl.gz" // per second, appended as seconds close
	SamplesFile  = "samples.tsv"             // raw latencies, a bounded sample per second
)

// NewRecorder creates a recorder writing into dir. Seconds are closed (their
// row written) once they are older than horizon, so deliveries that arrive
// later than that still count in their pace step and phase but not in the
// second's row.
func NewRecorder(dir string, meta Meta, horizon time.Duration) (*Recorder, error) {
	tl, err := os.OpenFile(filepath.Join(dir, TimelineFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create timeline: %w", err)
	}
	if _, err := tl.WriteString(timelineHeader); err != nil {
		tl.Close()
		return nil, fmt.Errorf("write timeline: %w", err)
	}
	gzFile, err := os.OpenFile(filepath.Join(dir, SecondsFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		tl.Close()
		return nil, fmt.Errorf("create per-second digests: %w", err)
	}
	gz := gzip.NewWriter(gzFile)
	samplesOut, err := os.OpenFile(filepath.Join(dir, SamplesFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		tl.Close()
		gzFile.Close()
		return nil, fmt.Errorf("create samples: %w", err)
	}
	if _, err := samplesOut.WriteString("at_s\tmetric\tlatency_ms\n"); err != nil {
		return nil, fmt.Errorf("write samples: %w", err)
	}
	r := &Recorder{
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
		rng:        rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)),
		samplesOut: samplesOut,
		dir:        dir,
		meta:       meta,
		horizon:    horizon,
		phases:     map[string]*window{},
		open:       map[int64]*window{},
		closed:     math.MinInt64,
		timeline:   tl,
		gzFile:     gzFile,
		gz:         gz,
		enc:        json.NewEncoder(gz),
	}
	go r.aggregate(r.stop, r.stopped)
	return r, nil
}

// BeginStep registers a pace step before its first event and returns its
// index among all steps.
func (r *Recorder) BeginStep(s Span) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		r.origin = s.Start
		r.closed = 0
	}
	r.spans = append(r.spans, s)
	r.steps = append(r.steps, newWindow())
	r.extra = append(r.extra, StepExtra{})
	r.notRun = append(r.notRun, false)
	if r.phases[s.Phase] == nil {
		r.phases[s.Phase] = newWindow()
	}
	return len(r.spans) - 1
}

// SetThresholds sets the scenario's thresholds: per-step ones take part in
// each step's verdict, and every breach is listed in the summary.
func (r *Recorder) SetThresholds(ts []Threshold) {
	r.mu.Lock()
	r.thresholds = ts
	r.mu.Unlock()
}

// SetLateReceipts records how many receipts matched no event sent, and how
// many arrived after their load's drain (their events count as lost).
func (r *Recorder) SetLateReceipts(outOfRange, afterDrain int64) {
	r.mu.Lock()
	r.outOfRange, r.afterDrain = outOfRange, afterDrain
	r.mu.Unlock()
}

// AlignStart returns the first instant at or after t that falls on a whole
// second of the timeline, so that pace steps of whole seconds fill whole
// rows. Before the first step, t itself is returned.
func (r *Recorder) AlignStart(t time.Time) time.Time {
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
func (r *Recorder) StopSteps(steps []int, stop time.Time) {
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
func (r *Recorder) SetStepExtra(i int, e StepExtra) {
	r.mu.Lock()
	r.extra[i] = e
	r.mu.Unlock()
}

// locate returns the windows an event with intended time ti (Unix ns) feeds:
// its second (nil when already closed), its step and its phase. Callers hold
// r.mu.
func (r *Recorder) locate(ti int64) (sec, step, phase *window) {
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

func (r *Recorder) newSecond() *window {
	if n := len(r.free); n > 0 {
		w := r.free[n-1]
		r.free = r.free[:n-1]
		return w
	}
	w := newWindow()
	w.samples = &samples{}
	return w
}

// each applies f to every window an event feeds.
func (r *Recorder) each(ti int64, f func(w *window)) {
	sec, step, phase := r.locate(ti)
	for _, w := range [...]*window{sec, step, phase} {
		if w != nil {
			f(w)
		}
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// record is one event measurement waiting to be applied to the windows.
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
func (r *Recorder) push(x record) {
	r.bufMu.Lock()
	r.buf = append(r.buf, x)
	r.bufMu.Unlock()
}

// applyPending applies every queued record. Callers hold r.mu.
func (r *Recorder) applyPending() {
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
func (r *Recorder) aggregate(stop <-chan struct{}, done chan<- struct{}) {
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
func (r *Recorder) Intended(ti int64) { r.push(record{op: opIntended, ti: ti}) }

// Dropped counts an event that could not start.
func (r *Recorder) Dropped(ti int64) { r.push(record{op: opDropped, ti: ti}) }

// SendDone records a finished send: started and ack are Unix ns; ok is
// whether the sink acknowledged it with a 2xx.
func (r *Recorder) SendDone(ti, started, ack int64, ok bool) {
	r.push(record{op: opSendDone, ti: ti, a: started, b: ack, flag: ok})
}

// Delivered records a receipt at the sink at received (Unix ns) of an event
// intended at ti; duplicate receipts are counted and not timed.
func (r *Recorder) Delivered(ti, received int64, duplicate bool) {
	r.push(record{op: opDelivered, ti: ti, a: received, flag: duplicate})
}

// apply adds one record to the windows it feeds. Callers hold r.mu.
func (r *Recorder) apply(x record) {
	ti := x.ti
	switch x.op {
	case opIntended:
		r.each(ti, func(w *window) { w.Intended++ })
	case opDropped:
		r.each(ti, func(w *window) { w.Dropped++ })
	case opSendDone:
		started, ack := x.a, x.b
		r.each(ti, func(w *window) {
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
		r.each(ti, func(w *window) {
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
func (r *Recorder) Live(now time.Time) Live {
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
func (r *Recorder) StepQuantile(i int, m Metric, q float64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	return r.steps[i].digests[m].Quantile(q)
}
