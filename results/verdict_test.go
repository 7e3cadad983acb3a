package results

import (
	"strings"
	"testing"
)

func step(target, delivered float64) StepSummary {
	return StepSummary{Phase: "measure", TargetRPS: target, Figures: Figures{DeliveredRPS: delivered}}
}

func judged(steps ...StepSummary) []StepSummary {
	for i := range steps {
		steps[i].Verdict, steps[i].Reason, steps[i].GeneratorOnly = judge(steps[i], nil)
	}
	return steps
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name    string
		step    StepSummary
		verdict string
		reason  string
	}{
		{name: "all delivered", step: step(1000, 1000), verdict: "held"},
		{name: "99 % delivered holds", step: step(1000, 990), verdict: "held"},
		{name: "too few delivered", step: step(1000, 950), verdict: "broken", reason: "delivered 950.0/s < 99% of 1000/s"},
		{name: "loss only at the end of a step", step: func() StepSummary { s := step(1000, 999.9); s.Lost = 3; return s }(), verdict: "broken", reason: "3 lost"},
		{name: "send failures and drops", step: func() StepSummary { s := step(1000, 1000); s.SendFailures, s.Dropped = 2, 5; return s }(), verdict: "broken", reason: "2 send failures; 5 dropped"},
		{name: "generator saturated", step: func() StepSummary {
			s := step(1000, 1000)
			s.GeneratorSaturated = true
			s.SendLagMS.P99 = 12.5
			return s
		}(), verdict: "broken", reason: "generator saturated (send-lag p99 12.50 ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verdict, reason, _ := judge(tt.step, nil)
			if verdict != tt.verdict || reason != tt.reason {
				t.Errorf("judge = %q, %q; want %q, %q", verdict, reason, tt.verdict, tt.reason)
			}
		})
	}
}

func TestSustained(t *testing.T) {
	broken := func(target float64) StepSummary { s := step(target, target); s.Lost = 1; return s }
	saturated := func(s StepSummary) StepSummary { s.GeneratorSaturated = true; return s }
	tests := []struct {
		name  string
		steps []StepSummary
		want  float64
	}{
		{name: "capacity between two steps", steps: judged(step(1000, 1000), step(1100, 1100), step(1200, 1150), step(1300, 1100)), want: 1100},
		{name: "a recovery step does not raise it", steps: judged(step(1000, 1000), step(1500, 1500), step(100, 100), step(1600, 1500), step(1700, 1500)), want: 1500},
		{name: "a lucky step above a broken one does not count", steps: judged(step(1000, 1000), broken(1100), step(1200, 1200)), want: 1000},
		{name: "everything held", steps: judged(step(1000, 1000), step(2000, 2000)), want: 2000},
		{name: "nothing held", steps: judged(broken(1000)), want: 0},
		{name: "a step only the generator broke neither caps nor counts", steps: judged(step(200, 200), saturated(step(400, 400)), step(900, 900), saturated(step(1000, 1000))), want: 900},
		{name: "a step the system broke caps it though the generator was saturated too", steps: judged(step(200, 200), saturated(broken(400)), step(900, 900)), want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sustained(tt.steps); got != tt.want {
				var b strings.Builder
				for _, s := range tt.steps {
					b.WriteString(s.Verdict + " ")
				}
				t.Errorf("sustained = %g, want %g (%s)", got, tt.want, b.String())
			}
		})
	}
}
