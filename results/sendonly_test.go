package results

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestSendOnlyStepsMeasureNoDelivery feeds one send-only step and one
// delivering step, and checks that the send-only one holds with nothing
// delivered, has no end-to-end figures (absent from the JSON, not zero), and
// is spared the thresholds on what it cannot measure, while the delivering
// one is judged as always.
func TestSendOnlyStepsMeasureNoDelivery(t *testing.T) {
	a := NewAggregator(Meta{Scenario: "url"})
	defer a.Close()
	th := func(text string) Threshold {
		t.Helper()
		x, err := ParseThreshold(text)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	a.SetThresholds([]Threshold{th("e2e.p99 < 5ms per step"), th("delivered_ratio >= 0.99 per step"), th("publish.p99 < 5ms per step")})
	start := time.Now()
	send := a.BeginStep(Span{Phase: "measure", Index: 0, TargetRPS: 10, Start: start, Duration: time.Second})
	a.SetStepExtra(send, StepExtra{SendOnly: true})
	both := a.BeginStep(Span{Phase: "measure", Index: 1, TargetRPS: 10, Start: start.Add(time.Second), Duration: time.Second})
	for i := range 10 {
		ti := start.Add(time.Duration(i) * 100 * time.Millisecond).UnixNano()
		a.Intended(ti)
		a.SendDone(ti, ti, ti+int64(time.Millisecond), true)
		// The delivering step: sent, acknowledged, never delivered.
		tj := ti + int64(time.Second)
		a.Intended(tj)
		a.SendDone(tj, tj, tj+int64(time.Millisecond), true)
	}
	sum := a.Summary()
	s, d := sum.Paces[send], sum.Paces[both]
	if s.Verdict != "held" || !s.SendOnly || s.E2EMS.Count != 0 || s.PublishMS.Count != 10 {
		t.Errorf("send-only step: %s (%s), send-only %v, e2e %v, %d publish latencies", s.Verdict, s.Reason, s.SendOnly, s.E2EMS, s.PublishMS.Count)
	}
	if d.Verdict != "broken" || !strings.Contains(d.Reason, "delivered 0.0/s") || d.E2EMS.Count != 0 {
		t.Errorf("delivering step: %s (%s), e2e %v", d.Verdict, d.Reason, d.E2EMS)
	}
	for _, b := range sum.Breaches {
		if strings.HasPrefix(b.Scope, "step 1 ") {
			t.Errorf("the send-only step breached %s", b.Threshold)
		}
	}
	if len(sum.Breaches) != 1 || sum.Breaches[0].Threshold != "delivered_ratio >= 0.99 per step" {
		t.Errorf("breaches %+v, want the delivering step's delivered_ratio alone", sum.Breaches)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "e2e_ms") || !strings.Contains(string(data), `"send_only":true`) {
		t.Errorf("summary of the send-only step: %s", data)
	}
	if !math.IsNaN(s.E2E(P99)) || !math.IsNaN(sum.Totals.E2E(P99)) {
		t.Errorf("end-to-end p99 without a delivery: %g, over the run %g", s.E2E(P99), sum.Totals.E2E(P99))
	}
}
