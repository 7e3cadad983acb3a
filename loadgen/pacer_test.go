package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/perfrunner/runner/pace"
)

// TestIntendedAtIsThePacersTime checks that IntendedAt gives every event
// the intended time the pacer fires it with, across steps of two rates:
// a share of a load whose agent died is accounted with it.
func TestIntendedAtIsThePacersTime(t *testing.T) {
	steps := []pace.Step{{RPS: 1000, Duration: 30 * time.Millisecond}, {RPS: 1500, Duration: 20 * time.Millisecond}}
	start := time.Now().Add(5 * time.Millisecond)
	var ticks []Tick
	if err := Pace(context.Background(), steps, start, DefaultTick, func(t Tick) { ticks = append(ticks, t) }); err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 60 {
		t.Fatalf("%d events, want 60", len(ticks))
	}
	for _, tk := range ticks {
		if got, ok := IntendedAt(steps, start, tk.Seq); !ok || got != tk.Intended {
			t.Errorf("event %d: IntendedAt = %d, %v; the pacer gave %d", tk.Seq, got, ok, tk.Intended)
		}
	}
	if _, ok := IntendedAt(steps, start, 60); ok {
		t.Error("IntendedAt gave a time to an event beyond the pace")
	}
}
