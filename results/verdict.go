package results

import (
	"fmt"
	"math"
	"strings"
)

// DeliveredRatioLimit is the share of a step's target rate that must be
// delivered for the step to hold.
const DeliveredRatioLimit = 0.99

// judge gives a pace step its verdict: held, or broken with every reason,
// a breached per-step threshold among them; generatorOnly when the load
// generator's saturation is the only reason.
func judge(s StepSummary, limits []Threshold) (verdict, reason string, generatorOnly bool) {
	var reasons []string
	for _, t := range limits {
		if !t.perStep || s.SendOnly && t.NeedsDelivery() {
			continue
		}
		if v, ok := t.check(stepSource(s)); !ok {
			if math.IsNaN(v) {
				reasons = append(reasons, fmt.Sprintf("%s (not measured)", t.Text))
			} else {
				reasons = append(reasons, fmt.Sprintf("%s (%s)", t.Text, FormatValue(v, t.unit())))
			}
		}
	}
	if s.TargetRPS > 0 && !s.SendOnly && s.DeliveredRPS < DeliveredRatioLimit*s.TargetRPS {
		reasons = append(reasons, fmt.Sprintf("delivered %.1f/s < %.0f%% of %g/s", s.DeliveredRPS, DeliveredRatioLimit*100, s.TargetRPS))
	}
	if s.SendFailures > 0 {
		reasons = append(reasons, fmt.Sprintf("%d send failures", s.SendFailures))
	}
	if s.Lost > 0 {
		reasons = append(reasons, fmt.Sprintf("%d lost", s.Lost))
	}
	if s.Dropped > 0 {
		reasons = append(reasons, fmt.Sprintf("%d dropped", s.Dropped))
	}
	if s.GeneratorSaturated {
		reasons = append(reasons, fmt.Sprintf("generator saturated (send-lag p99 %.2f ms)", s.SendLagMS.P99))
	}
	if len(reasons) == 0 {
		return "held", "", false
	}
	return "broken", strings.Join(reasons, "; "), s.GeneratorSaturated && len(reasons) == 1
}

// sustained returns the sustained rate of a ramp: the highest target among
// held steps that is below the lowest target of any broken step. A recovery
// step at a low rate (the 2019 report's 100:60) holds without raising it,
// and a step that holds by luck above a broken one does not count. A step
// only the load generator broke says nothing of the system under test, and
// neither caps nor counts.
func sustained(steps []StepSummary) float64 {
	lowestBroken := -1.0
	for _, s := range steps {
		if s.Verdict == "broken" && !s.GeneratorOnly && (lowestBroken < 0 || s.TargetRPS < lowestBroken) {
			lowestBroken = s.TargetRPS
		}
	}
	best := 0.0
	for _, s := range steps {
		if s.Verdict == "held" && (lowestBroken < 0 || s.TargetRPS < lowestBroken) && s.TargetRPS > best {
			best = s.TargetRPS
		}
	}
	return best
}
