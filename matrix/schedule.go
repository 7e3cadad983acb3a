package matrix

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Clock is the scheduler's time, so that tests need not wait for minutes.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Scheduler runs a job on a cron schedule, never two at once: a run that
// comes due while the last is still going is skipped, and said so.
type Scheduler struct {
	Spec  string                          // standard five-field cron, or a descriptor such as @hourly
	Job   func(ctx context.Context) error // one matrix run
	Say   func(string)                    // lines for people; nil for none
	Clock Clock                           // nil: the real clock
}

// ParseSchedule checks a cron spec.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("--cron %q: %w", spec, err)
	}
	return s, nil
}

// Run schedules until ctx ends, then waits for a run still going (which
// sees ctx end too and tears its cell down).
func (s *Scheduler) Run(ctx context.Context) error {
	sched, err := ParseSchedule(s.Spec)
	if err != nil {
		return err
	}
	clock := s.Clock
	if clock == nil {
		clock = realClock{}
	}
	say := func(format string, args ...any) {
		if s.Say != nil {
			s.Say(fmt.Sprintf(format, args...))
		}
	}
	var (
		mu      sync.Mutex
		running bool
		wg      sync.WaitGroup
	)
	defer wg.Wait()
	var last time.Time
	for {
		now := clock.Now()
		if now.Before(last) {
			now = last // a clock stepped back does not run a slot twice
		}
		next := sched.Next(now)
		say("next run at %s", next.Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(next.Sub(clock.Now())):
		}
		if ctx.Err() != nil {
			return nil // stopping: no new run
		}
		last = next
		mu.Lock()
		busy := running
		running = !busy
		mu.Unlock()
		if busy {
			say("run due at %s skipped: the previous run is still going", next.Format(time.RFC3339))
			continue
		}
		say("run due at %s started", next.Format(time.RFC3339))
		wg.Add(1)
		go func(due time.Time) {
			defer wg.Done()
			err := s.Job(ctx)
			mu.Lock()
			running = false
			mu.Unlock()
			if err != nil {
				say("run due at %s: %v", due.Format(time.RFC3339), err)
			} else {
				say("run due at %s finished", due.Format(time.RFC3339))
			}
		}(next)
	}
}
