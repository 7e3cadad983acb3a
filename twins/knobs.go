package twins

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Knobs make a twin a ground truth for the runner's measurements: a known
// capacity, added latency from a known distribution, and exact shares of
// lost and duplicated events.
type Knobs struct {
	Capacity  float64 `json:"capacity" schema:"minimum=0" doc:"events/s the twin dispatches at most; 0: as fast as it can"`
	Backlog   int     `json:"backlog" schema:"minimum=0" doc:"events waiting for capacity before the ingress refuses (503); Kafka twins: records a consumer group holds at once; 0: capacity × 0.1 s when capacity is set, else 10000"`
	Latency   string  `json:"latency" doc:"added before each delivery: 2ms, uniform:1ms-5ms, exponential:2ms or normal:5ms,1ms"`
	Loss      float64 `json:"loss" schema:"minimum=0,maximum=1" doc:"share of events never delivered: exactly ⌊n·loss⌋ of the first n, evenly spread"`
	Duplicate float64 `json:"duplicate" schema:"minimum=0,maximum=1" doc:"share of the other events (those not lost) delivered twice, counted the same way"`
	CPU       string  `json:"cpu" doc:"CPU time each event costs the twin before its delivery, spent computing on its own thread (e.g. 200µs): a system whose cost per event is known"`
}

// knobs is Knobs ready for use.
type knobs struct {
	latency   func() time.Duration // nil: none
	cpu       time.Duration        // CPU time burnt per event
	limiter   *limiter             // nil: no capacity limit
	backlog   int
	loss, dup every
}

func (k Knobs) build() (*knobs, error) {
	lat, err := parseLatency(k.Latency)
	if err != nil {
		return nil, fmt.Errorf("twin.latency: %w", err)
	}
	out := &knobs{latency: lat, loss: every{rate: k.Loss}, dup: every{rate: k.Duplicate}, backlog: k.Backlog}
	if k.CPU != "" {
		if out.cpu, err = time.ParseDuration(k.CPU); err != nil || out.cpu < 0 || out.cpu > time.Second {
			return nil, fmt.Errorf("twin.cpu: %q is not a duration between 0 and 1s, such as 200µs", k.CPU)
		}
	}
	if k.Capacity > 0 {
		out.limiter = &limiter{interval: time.Duration(float64(time.Second) / k.Capacity)}
		if out.backlog == 0 {
			out.backlog = max(1, int(k.Capacity/10))
		}
	}
	if out.backlog == 0 {
		out.backlog = 10000
	}
	return out, nil
}

// every picks exactly ⌊n·rate⌋ of the first n events, spread evenly: event
// n is picked when ⌊n·rate⌋ grows.
type every struct {
	rate float64
	n    atomic.Int64
}

func (e *every) next() bool {
	if e.rate <= 0 {
		return false
	}
	n := e.n.Add(1)
	return math.Floor(float64(n)*e.rate) > math.Floor(float64(n-1)*e.rate)
}

// limiter spaces events interval apart on an absolute schedule, so that a
// late wake-up is made up by the events after it and the rate over time is
// the capacity, however the timers jitter. After an idle spell it lets at
// most burstWindow's worth of events through at once.
type limiter struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

// burstWindow bounds how far behind its schedule a limiter may catch up.
const burstWindow = 10 * time.Millisecond

// wait blocks until the caller's turn comes, or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	l.mu.Lock()
	at := l.next
	if floor := time.Now().Add(-burstWindow); at.Before(floor) {
		at = floor
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// parseLatency reads a latency distribution: "2ms" (constant),
// "uniform:1ms-5ms", "exponential:2ms" (mean) or "normal:5ms,1ms" (mean,
// standard deviation; never below zero).
func parseLatency(s string) (func() time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	kind, args, found := strings.Cut(s, ":")
	if !found {
		d, err := duration(s)
		if err != nil {
			return nil, err
		}
		return func() time.Duration { return d }, nil
	}
	switch kind {
	case "uniform":
		lo, hi, ok := strings.Cut(args, "-")
		a, err1 := duration(lo)
		b, err2 := duration(hi)
		if !ok || err1 != nil || err2 != nil || b < a {
			return nil, fmt.Errorf("%q: want uniform:MIN-MAX, e.g. uniform:1ms-5ms", s)
		}
		return func() time.Duration { return a + time.Duration(rand.Int64N(int64(b-a)+1)) }, nil
	case "exponential":
		mean, err := duration(args)
		if err != nil {
			return nil, fmt.Errorf("%q: want exponential:MEAN, e.g. exponential:2ms", s)
		}
		return func() time.Duration { return time.Duration(rand.ExpFloat64() * float64(mean)) }, nil
	case "normal":
		m, sd, ok := strings.Cut(args, ",")
		mean, err1 := duration(m)
		dev, err2 := duration(sd)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: want normal:MEAN,STDDEV, e.g. normal:5ms,1ms", s)
		}
		return func() time.Duration {
			return max(0, time.Duration(rand.NormFloat64()*float64(dev)+float64(mean)))
		}, nil
	}
	return nil, fmt.Errorf("%q: want a duration (2ms), uniform:MIN-MAX, exponential:MEAN or normal:MEAN,STDDEV", s)
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %s", s)
	}
	return d, nil
}

// isoDuration reads the ISO 8601 durations Knative's delivery spec uses:
// PnDTnHnMnS, each part optional, seconds possibly fractional.
func isoDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not an ISO 8601 duration such as PT0.2S or PT5M", s)
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return 0, bad
	}
	var total float64
	inTime := false
	num := ""
	parts := 0
	for _, c := range rest {
		switch {
		case c == 'T' && !inTime && num == "":
			inTime = true
		case c >= '0' && c <= '9' || c == '.':
			num += string(c)
		default:
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, bad
			}
			unit := map[bool]map[rune]float64{
				false: {'D': 86400, 'W': 7 * 86400},
				true:  {'H': 3600, 'M': 60, 'S': 1},
			}[inTime][c]
			if unit == 0 {
				return 0, bad
			}
			total += v * unit
			num = ""
			parts++
		}
	}
	if num != "" || parts == 0 {
		return 0, bad
	}
	return time.Duration(total * float64(time.Second)), nil
}

// burn spends d of CPU time on the calling goroutine's thread, counted by
// the thread's own CPU clock, so that time the thread waits for a core
// does not count.
func burn(d time.Duration) {
	if d <= 0 {
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return
	}
	end := ts.Nano() + d.Nanoseconds()
	x := uint64(1)
	for ts.Nano() < end {
		for range 1000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
			return
		}
	}
	burnSink.Store(x)
}

// burnSink keeps burn's arithmetic from being optimized away.
var burnSink atomic.Uint64
