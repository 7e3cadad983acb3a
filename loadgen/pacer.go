package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/perfrunner/runner/pace"
)

// Tick is one scheduled event.
type Tick struct {
	Step     int   // pace step index
	Seq      int64 // event number across the whole pace, from 0
	Intended int64 // intended send time, Unix ns
}

// driftTolerance is how far the timer's period, a whole number of ns,
// may drift from the pace's exact schedule before the timer is set again.
const driftTolerance = 1000 // ns

// armSlack is how long after a deadline the timer is set to expire: more
// than the error of the pacer's reading of CLOCK_MONOTONIC (see
// calibrate) and the drift tolerated, so that when the timer expires the
// pacer's clock has reached the deadline too.
const armSlack = 2000 // ns

// DefaultTick is a pace's tick when it gives none (see Pace).
const DefaultTick = 500 * time.Microsecond

// Pace fires fire for every event of steps, on one absolute schedule that
// starts at start: event i of a step is due at stepStart + i/rate. It wakes
// at most once per tick: at a rate of one event per tick or less, at each
// event's deadline; above, at the deadline of every k-th event (k events
// per tick), firing each time the events due since the last wake. An
// event's send so starts up to one tick after its deadline, plus the
// kernel's wake-up latency (tens of µs); its intended time is always its
// own deadline, so the wait counts in its latency and its send-lag. A tick
// of 0 wakes for every event. When it wakes late it fires every overdue
// event at once. fire must be quick: it runs on the pacer's goroutine. Pace
// returns when the schedule is done or ctx ends.
//
// Waking is what pacing costs: on a virtual machine a precise wake-up from
// idle costs 30 to 40 µs of CPU, whatever wakes the thread (measured with
// clock_nanosleep and timerfd alike), which at 10000 events/s is a third
// of a core; a tick of 500 µs makes it a fifth of that. The pacer waits on a
// periodic timerfd (CLOCK_MONOTONIC) read through Go's network poller: the
// kernel's high-resolution timer wakes it within tens of microseconds,
// where a Go timer can be a millisecond late (the poller's wait has
// millisecond resolution); the timer is set once per step (again only when
// its period, a whole number of ns, has drifted by a microsecond from the
// exact schedule), so that a wake costs one read; and no thread of its own
// is woken: the thread that waits for the sends' answers wakes for the
// timer too, and runs the sends the pacer starts.
func Pace(ctx context.Context, steps []pace.Step, start time.Time, tick time.Duration, fire func(Tick)) error {
	clock, err := newTimer()
	if err != nil {
		return err
	}
	defer clock.close()
	stop := context.AfterFunc(ctx, clock.interrupt)
	defer stop()
	// Intended times are wall-clock Unix ns (they cross hosts); deadlines
	// are monotonic, read through the runtime's clock (no system call).
	wallStart := start.UnixNano()
	monoStart := clock.mono(time.Now()) + int64(time.Until(start))

	var seq int64
	var stepOffset int64 // ns from start to the current step's start
	for k, st := range steps {
		n := st.Events()
		interval := 1e9 / st.RPS
		due := func(i int64) int64 { return monoStart + stepOffset + int64(math.Round(float64(i)*interval)) }
		// Wake for every stride-th event: at most once per tick.
		stride := max(1, int64(math.Ceil(float64(tick)/interval-1e-9)))
		period := int64(math.Ceil(float64(stride) * interval))
		for i := int64(0); i < n; {
			wake := min((i+stride-1)/stride*stride, n-1)
			if err := clock.waitFor(due(wake), period); err != nil {
				return ctxErr(ctx, err)
			}
			now := clock.mono(time.Now())
			for ; i < n && due(i) <= now; i++ {
				fire(Tick{Step: k, Seq: seq, Intended: wallStart + due(i) - monoStart})
				seq++
			}
		}
		stepOffset += int64(st.Duration)
	}
	// Hold until the last step's end, so that steps keep their length.
	return ctxErr(ctx, clock.waitFor(monoStart+stepOffset, 0))
}

// IntendedAt returns the intended time (Unix ns) Pace gives event seq of
// steps from start, and false when the steps hold fewer events.
func IntendedAt(steps []pace.Step, start time.Time, seq int64) (int64, bool) {
	offset := start.UnixNano()
	for _, st := range steps {
		if n := st.Events(); seq >= n {
			seq -= n
			offset += int64(st.Duration)
			continue
		}
		return offset + int64(math.Round(float64(seq)*(1e9/st.RPS))), true
	}
	return 0, false
}

// ctxErr returns ctx's error when it ended, err otherwise.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// timer is a timerfd read through the runtime's poller.
type timer struct {
	fd   int
	file *os.File
	// base and monoBase are one instant on the runtime's monotonic clock
	// (time.Time) and as CLOCK_MONOTONIC ns, which the runtime reads.
	base     time.Time
	monoBase int64
	// armed and period are the timer's first expiry and its period (ns,
	// 0 for one expiry), as last set; through is the last expiry read.
	armed, period, through int64
}

func newTimer() (*timer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pacer: timerfd: %w", err)
	}
	t := &timer{fd: fd}
	if err := t.calibrate(); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pacer: %w", err)
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	t.file = os.NewFile(uintptr(fd), "pacer-timerfd")
	return t, nil
}

// calibrate ties the runtime's monotonic clock to CLOCK_MONOTONIC (the
// runtime reads that clock, from an origin of its own): the reading of
// CLOCK_MONOTONIC between two of time.Now that are closest together, of
// twenty, placed at their midpoint. Its error is half that gap, well under
// armSlack.
func (t *timer) calibrate() error {
	best := time.Duration(math.MaxInt64)
	for range 20 {
		var ts unix.Timespec
		before := time.Now()
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return err
		}
		gap := time.Since(before)
		if gap < best {
			best = gap
			t.base, t.monoBase = before.Add(gap/2), ts.Nano()
		}
	}
	return nil
}

// mono returns t on CLOCK_MONOTONIC, in ns.
func (t *timer) mono(at time.Time) int64 { return t.monoBase + int64(at.Sub(t.base)) }

func (t *timer) close() { _ = t.file.Close() }

// interrupt ends a wait in progress, and every later one.
func (t *timer) interrupt() { _ = t.file.SetReadDeadline(time.Unix(1, 0)) }

// errInterrupted is a wait that interrupt ended.
var errInterrupted = errors.New("pacer interrupted")

// waitFor parks until CLOCK_MONOTONIC reads deadline (ns). With a period,
// the timer keeps expiring every period after it, so that the next wait
// for deadline + period needs no new setting.
func (t *timer) waitFor(deadline, period int64) error {
	var buf [8]byte
	for {
		now := t.mono(time.Now())
		if now >= deadline {
			return nil
		}
		at := deadline + armSlack
		if next := t.nextExpiry(max(now, t.through)); next < at-driftTolerance || next > at+driftTolerance {
			spec := unix.ItimerSpec{Value: unix.NsecToTimespec(at), Interval: unix.NsecToTimespec(period)}
			if err := unix.TimerfdSettime(t.fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
				return fmt.Errorf("pacer: timerfd_settime: %w", err)
			}
			t.armed, t.period, t.through = at, period, 0
		}
		// Returns once the timer expired: how often, it does not matter.
		if _, err := t.file.Read(buf[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return errInterrupted
			}
			return fmt.Errorf("pacer: timerfd: %w", err)
		}
		// Every expiry up to now was read, the one waited for included,
		// whatever the pacer's clock says.
		t.through = max(t.nextExpiry(max(now, t.through)), t.lastExpiry(t.mono(time.Now())+armSlack))
	}
}

// nextExpiry returns when the timer, as last set, expires first after
// after; math.MaxInt64 when it will not.
func (t *timer) nextExpiry(after int64) int64 {
	switch {
	case t.armed > after:
		return t.armed
	case t.period == 0:
		return math.MaxInt64
	}
	return t.armed + ((after-t.armed)/t.period+1)*t.period
}

// lastExpiry returns the timer's last expiry at or before now; 0 when none.
func (t *timer) lastExpiry(now int64) int64 {
	switch {
	case t.armed == 0 || t.armed > now:
		return 0
	case t.period == 0:
		return t.armed
	}
	return t.armed + (now-t.armed)/t.period*t.period
}
