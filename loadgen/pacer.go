package loadgen

import (
	"context"
	"math"
	"runtime"
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

// maxSleep bounds one sleep, so that a cancelled pacer at a low rate stops
// promptly.
const maxSleep = 50 * time.Millisecond

// Pace fires fire for every event of steps, on one absolute schedule that
// starts at start: event i of a step is due at stepStart + i/rate. It runs on
// a goroutine locked to its own OS thread, sleeping with clock_nanosleep on
// CLOCK_MONOTONIC to absolute deadlines with a 1 ns timer slack, so that
// wake-ups are tens of microseconds late rather than a millisecond. When it
// wakes late it fires every overdue event at once, each still carrying its
// own intended time. fire must be quick: it runs on the pacer's thread. Pace
// returns when the schedule is done or ctx ends.
func Pace(ctx context.Context, steps []pace.Step, start time.Time, fire func(Tick)) error {
	done := make(chan error, 1)
	go func() {
		// Locked and never unlocked: the thread ends with this goroutine,
		// so the timer slack changed below never reaches other goroutines.
		runtime.LockOSThread()
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
		done <- pace1(ctx, steps, start, fire)
	}()
	return <-done
}

func pace1(ctx context.Context, steps []pace.Step, start time.Time, fire func(Tick)) error {
	// Anchor the monotonic clock to the wall clock once: deadlines are
	// monotonic, intended times are wall-clock Unix ns (they cross hosts).
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	now := time.Now()
	monoStart := ts.Nano() + int64(start.Sub(now))
	wallStart := start.UnixNano()

	var seq int64
	var stepOffset int64 // ns from start to the current step's start
	for k, st := range steps {
		n := st.Events()
		interval := 1e9 / st.RPS
		for i := int64(0); i < n; i++ {
			offset := stepOffset + int64(math.Round(float64(i)*interval))
			if err := sleepUntil(ctx, monoStart+offset); err != nil {
				return err
			}
			fire(Tick{Step: k, Seq: seq, Intended: wallStart + offset})
			seq++
		}
		stepOffset += int64(st.Duration)
	}
	// Hold until the last step's end, so that steps keep their length.
	return sleepUntil(ctx, monoStart+stepOffset)
}

// sleepUntil sleeps until the monotonic clock reads deadline (ns), waking
// every maxSleep to look at ctx.
func sleepUntil(ctx context.Context, deadline int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
			return err
		}
		left := deadline - now.Nano()
		if left <= 0 {
			return nil
		}
		target := deadline
		if left > int64(maxSleep) {
			target = now.Nano() + int64(maxSleep)
		}
		ts := unix.NsecToTimespec(target)
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != nil && err != unix.EINTR {
			return err
		}
	}
}
