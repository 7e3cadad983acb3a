package steps

import (
	"context"
	"time"
)

func init() {
	Register(Kind{
		Name: "sleep",
		Doc:  "Waits for a fixed duration.",
		New:  func() Spec { return new(Sleep) },
	})
}

// Sleep waits for Duration, or until its context ends.
type Sleep struct {
	Duration time.Duration `yaml:"duration" runner:"required" doc:"how long to wait, as a Go duration (30s, 5m)"`
}

// Validate checks that the duration is positive.
func (s *Sleep) Validate() []FieldError {
	if s.Duration <= 0 {
		return []FieldError{{Field: "duration", Message: "must be positive"}}
	}
	return nil
}

// Expected returns the sleep's duration.
func (s *Sleep) Expected(*Env) time.Duration { return s.Duration }

// Run waits.
func (s *Sleep) Run(ctx context.Context, _ *Env) error {
	t := time.NewTimer(s.Duration)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
