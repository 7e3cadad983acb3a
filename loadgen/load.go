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
)

// Config describes one load: a pace sent to one sink.
type Config struct {
	Name           string        // the load's name, unique in the run; event ids are Name-seq
	Pace           []pace.Step   // the schedule
	URL            string        // the sink: http(s):// for CloudEvents over HTTP, kafka://brokers/topic for records to a topic
	PayloadBytes   int           // data bytes per event
	InFlight       int           // the most sends in flight at once; 0: peak rate × request timeout
	RequestTimeout time.Duration // per send
	Senders        int           // HTTP clients, each with its own connections; events go round-robin
	Connections    int           // the most connections per sender; 0: min(InFlight/Senders, 1024)
	ProbeTimeout   time.Duration // how long a probe event may take to make the round trip
	GCBetweenSteps bool          // Go GC off during pace steps, a collection at each boundary
	// Tick is how often the pacer wakes at most (see Pace); 0:
	// DefaultTick, negative: at every event.
	Tick time.Duration
	// Part of Parts: a load shared by Parts generators (agents) sends only
	// the events whose sequence number is Part modulo Parts, so that the
	// parts' ids stay unique and their intended times interleave as one
	// generator's would. Parts 0 or 1: every event.
	Part, Parts int
	// Skew is added to the intended time every event carries: an agent
	// whose clock is off by Skew, for tests of a runner's clock
	// correction. Never set by a runner.
	Skew time.Duration `json:"-"`
}

// peakRPS returns the highest rate of c's pace that c's part sends.
func (c Config) peakRPS() float64 {
	peak := 0.0
	for _, s := range c.Pace {
		peak = math.Max(peak, s.RPS)
	}
	return peak / float64(max(1, c.Parts))
}

// Mine reports whether event seq is c's to send.
func (c Config) Mine(seq int64) bool { return c.Parts <= 1 || seq%int64(c.Parts) == int64(c.Part) }

// WithDefaults returns c with its zero fields filled in.
func (c Config) WithDefaults() Config {
	if c.PayloadBytes == 0 {
		c.PayloadBytes = 8192
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Senders == 0 {
		c.Senders = 1
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 30 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = max(1, int(math.Ceil(c.peakRPS()*c.RequestTimeout.Seconds())))
	}
	if c.Connections == 0 {
		c.Connections = max(1, min(c.InFlight/c.Senders, 1024))
	}
	return c
}

// Op says what a Record reports.
type Op uint8

// The records a load emits, for each event in this order: OpIntended, then
// OpDropped or OpSent.
const (
	OpIntended Op = iota // the pace scheduled the event
	OpDropped            // it could not start: every send in flight was busy
	OpSent               // its send finished, acknowledged or not
)

// Record is one thing that happened to one event of a load. It is small
// and flat, so that a remote agent can send it over the wire as it is.
type Record struct {
	Op       Op
	Seq      int64 // the event's number in its load, from 0
	Intended int64 // Unix ns: when the pace meant it to be sent
	Started  int64 // OpSent: Unix ns, when the send began
	Answered int64 // OpSent: Unix ns, when the answer came or the send failed
	OK       bool  // OpSent: the sink acknowledged the event with a 2xx
}

// Output receives a load's records as they happen. Add is called from many
// goroutines at once, on the load's hot path: it must be safe for
// concurrent use and return at once.
type Output interface {
	Add(Record)
}

// Result is what a load learnt that its records do not say.
type Result struct {
	SendErrors map[string]int // distinct send errors (at most 10) and how often each occurred
	// Stopped is when the pace stopped early (its context ended); zero
	// when every event was scheduled.
	Stopped time.Time
	// Parts lists the parts of a load shared by agents that ended early.
	Parts []PartLoss
}

// PartLoss is a part of a load whose agent could not start it, failed, or
// was lost: its events no agent reported as sent count as dropped.
type PartLoss struct {
	Agent   string
	Error   string
	Dropped int64
}

// Load is one load with its senders open. Probe it, Run it once, then
// Close it.
type Load struct {
	cfg     Config
	events  int64
	senders []sender
}

// New opens cfg's senders.
func New(cfg Config) (*Load, error) {
	cfg = cfg.WithDefaults()
	l := &Load{cfg: cfg}
	for _, s := range cfg.Pace {
		l.events += s.Events()
	}
	for range cfg.Senders {
		s, err := newSender(cfg)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.senders = append(l.senders, s)
	}
	return l, nil
}

// Config returns the load's configuration, defaults filled in.
func (l *Load) Config() Config { return l.cfg }

// Events returns how many events the pace schedules.
func (l *Load) Events() int64 { return l.events }

// Close closes the senders.
func (l *Load) Close() {
	for _, s := range l.senders {
		s.Close()
	}
}

// Run sends the pace from start, reporting every event to out, and returns
// once every send has finished. When ctx ends early, the pace stops, sends
// in flight finish, and the error says so.
func (l *Load) Run(ctx context.Context, start time.Time, out Output) (Result, error) {
	cfg := l.cfg
	res := Result{SendErrors: map[string]int{}}
	var errMu sync.Mutex
	// Sends run on their own timeouts, off the run's context: thousands
	// of concurrent children of one cancellable context contend on its
	// lock, and a send in flight at an interrupt is allowed to finish.
	sendCtx := context.WithoutCancel(ctx)
	work := func(t Tick) {
		started := time.Now().UnixNano()
		ok, err := l.senders[t.Seq%int64(len(l.senders))].Send(sendCtx, ID(cfg.Name, t.Seq), t.Intended+int64(cfg.Skew))
		answered := time.Now().UnixNano()
		if !ok {
			errMu.Lock()
			msg := errorKind(err)
			if _, seen := res.SendErrors[msg]; seen || len(res.SendErrors) < 10 {
				res.SendErrors[msg]++
			}
			errMu.Unlock()
		}
		out.Add(Record{Op: OpSent, Seq: t.Seq, Intended: t.Intended, Started: started, Answered: answered, OK: ok})
	}
	p := newPool(cfg.InFlight, work)

	restoreMemory := protectMemory()
	defer restoreMemory()
	restoreGC := func() {}
	if cfg.GCBetweenSteps {
		restoreGC = gcBetweenSteps(ctx, start, cfg.Pace)
	}
	paceErr := Pace(ctx, cfg.Pace, start, max(cfg.Tick, 0), func(t Tick) {
		if !cfg.Mine(t.Seq) {
			return
		}
		out.Add(Record{Op: OpIntended, Seq: t.Seq, Intended: t.Intended})
		if !p.submit(t) {
			out.Add(Record{Op: OpDropped, Seq: t.Seq, Intended: t.Intended})
		}
	})
	if paceErr != nil {
		res.Stopped = time.Now()
	}
	restoreGC()
	p.close()
	if paceErr != nil {
		return res, fmt.Errorf("load stopped early: %w", context.Cause(ctx))
	}
	return res, nil
}

// ProbePrefix starts the id of a probe event.
const ProbePrefix = "probe-"

// ID returns the CloudEvents id of event seq of the load named name.
func ID(name string, seq int64) string { return name + "-" + strconv.FormatInt(seq, 10) }

// ParseID splits an event id into its load's name and sequence number, at
// its last '-' (a name may itself hold dashes). A probe's id is not an
// event's.
func ParseID(id string) (name string, seq int64, ok bool) {
	if strings.HasPrefix(id, ProbePrefix) {
		return "", 0, false
	}
	cut := strings.LastIndexByte(id, '-')
	if cut < 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(id[cut+1:], 10, 64)
	return id[:cut], seq, err == nil
}

// Probe sends probe events until arrived delivers the id of one of them,
// so that the receiver is known to see the load before its first event.
func (l *Load) Probe(parent context.Context, arrived <-chan string) error {
	return ProbeVia(parent, l.cfg, l.SendProbe, arrived)
}

// SendProbe sends one probe event with id through the load's first sender.
func (l *Load) SendProbe(ctx context.Context, id string) (bool, error) {
	return l.senders[0].Send(ctx, id, time.Now().UnixNano())
}

// ProbeVia is Probe for a load whose probes go through send (an agent's).
func ProbeVia(parent context.Context, cfg Config, send func(ctx context.Context, id string) (bool, error), arrived <-chan string) error {
	ctx, cancel := context.WithTimeout(parent, cfg.ProbeTimeout)
	defer cancel()
	for n := 0; ; n++ {
		id := ProbePrefix + cfg.Name + "-" + strconv.Itoa(n)
		acked, sendErr := send(ctx, id)
		wait := time.NewTimer(500 * time.Millisecond)
	waiting:
		for {
			select {
			case got := <-arrived:
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
				if acked {
					return fmt.Errorf("no probe event came back from %s within %s: the sink acknowledged the probes, but none reached the run's receivers (a sink that does not deliver to them needs sendOnly: true)", cfg.URL, cfg.ProbeTimeout)
				}
				return fmt.Errorf("no probe event came back from %s within %s (last send: %v)", cfg.URL, cfg.ProbeTimeout, sendErr)
			}
		}
	}
}

// warmWindow is how much of a load's peak rate its connections are opened
// for before the first event: the events a tick brings at once and those
// of the next 2 ms.
const warmWindow = 2 * time.Millisecond

// warmConnections is how many connections each sender opens before the
// first event.
func (c Config) warmConnections() int {
	return min(c.Connections, max(2, int(math.Ceil(c.peakRPS()*(max(c.Tick, 0)+warmWindow).Seconds()))))
}

// Warm opens, before the first event is due, the connections the load's
// first events will need: it sends that many probe events at once through
// each sender and waits for their answers (not for their arrival). A load
// whose connections are dialed by its first events starts with a burst of
// dials and queued sends that can take a second to clear. Errors are left
// to the load itself.
func (l *Load) Warm(ctx context.Context) {
	n := l.cfg.warmConnections()
	var wg sync.WaitGroup
	for k, s := range l.senders {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = s.Send(ctx, ProbePrefix+l.cfg.Name+"-warm-"+strconv.Itoa(k)+"-"+strconv.Itoa(i), time.Now().UnixNano())
			}()
		}
	}
	wg.Wait()
}

// ProbeAnswer sends probe events until the sink acknowledges one, for a
// sink that does not deliver to the run's receivers: the load starts once
// the sink answers.
func (l *Load) ProbeAnswer(parent context.Context) error {
	return ProbeAnswerVia(parent, l.cfg, l.SendProbe)
}

// ProbeAnswerVia is ProbeAnswer for a load whose probes go through send.
func ProbeAnswerVia(parent context.Context, cfg Config, send func(ctx context.Context, id string) (bool, error)) error {
	ctx, cancel := context.WithTimeout(parent, cfg.ProbeTimeout)
	defer cancel()
	for n := 0; ; n++ {
		ok, err := send(ctx, ProbePrefix+cfg.Name+"-"+strconv.Itoa(n))
		if ok {
			return nil
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			if parent.Err() != nil {
				return context.Cause(parent)
			}
			return fmt.Errorf("%s did not acknowledge a probe event within %s (last send: %v)", cfg.URL, cfg.ProbeTimeout, err)
		}
	}
}

// protectMemory sets the memory budget (see MemoryBudget) as the Go
// runtime's soft memory limit, unless one is set already (GOMEMLIMIT), so
// that the GC works harder before the run is killed, whatever the GC mode;
// the returned function restores the previous limit.
func protectMemory() (restore func()) {
	old := debug.SetMemoryLimit(-1)
	if old != math.MaxInt64 {
		return func() {}
	}
	limit, _ := MemoryBudget()
	debug.SetMemoryLimit(limit)
	return func() { debug.SetMemoryLimit(old) }
}

// MemoryBudget returns the memory a run may use, in bytes, and where that
// figure comes from: the Go runtime's memory limit when one is set
// (GOMEMLIMIT), else three quarters of the machine's memory (4 GiB when
// /proc/meminfo cannot say).
func MemoryBudget() (bytes int64, from string) {
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return limit, "GOMEMLIMIT"
	}
	total := memTotal()
	if total <= 0 {
		return 4 << 30, "4 GiB: the machine's memory is unknown"
	}
	return total / 4 * 3, "75% of this machine's " + FormatBytes(total)
}

// FormatBytes writes n bytes with an IEC unit: 512 B, 1.5 KiB, 17.6 GiB.
func FormatBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i:i+1] + "iB"
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

// Per-send and per-connection memory, upper estimates used by
// SendingMemory: a send in flight holds a goroutine with its stack, the
// event and the HTTP request; a connection holds its read buffer, its write
// buffer (the payload and 4 KiB of headers) and two goroutines. Measured on
// linux/amd64 (resident memory of a load against a sink that holds every
// request 4 s, 8 KiB payloads): 20 KiB per send waiting for a connection,
// 51 KiB per connection with its send in flight.
const (
	sendInFlightBytes = 24 << 10
	connectionBytes   = 32 << 10
)

// SendingMemory estimates, in bytes, the most memory the load's senders
// hold while it runs: every send in flight at once and every connection
// open.
func (c Config) SendingMemory() int64 {
	c = c.WithDefaults()
	conns := int64(c.Senders) * int64(c.Connections)
	return int64(c.InFlight)*sendInFlightBytes + conns*(connectionBytes+int64(c.PayloadBytes)) + int64(c.PayloadBytes)*int64(c.Senders)
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
