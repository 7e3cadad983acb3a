package results

import (
	"strconv"
	"strings"
	"testing"
)

func TestThresholds(t *testing.T) {
	sum := Summary{
		Paces: []StepSummary{
			{TargetRPS: 1000, Counts: Counts{Intended: 1000, Delivered: 1000}, Figures: Figures{E2EMS: Quantiles{P9999: 20}}, Verdict: "held"},
			{TargetRPS: 2000, Counts: Counts{Intended: 2000, Delivered: 1900}, StepExtra: StepExtra{Lost: 100}, Figures: Figures{E2EMS: Quantiles{P9999: 80}}, Verdict: "broken"},
			{TargetRPS: 3000, Verdict: "not-run"},
		},
		Totals: PhaseSummary{Counts: Counts{Intended: 3000, Delivered: 2900}, Lost: 100, Figures: Figures{E2EMS: Quantiles{P9999: 70}}},
	}
	tests := []struct {
		text     string
		breaches []string
	}{
		{"e2e.p9999 < 100ms", nil},
		{"e2e.p9999 < 50ms", []string{"run:70"}},
		{"e2e.p9999 < 50ms per step", []string{"step 2 (2000/s):80"}},
		{"lost == 0", []string{"run:100"}},
		{"delivered_ratio >= 0.99 per step", []string{"step 2 (2000/s):0.95"}},
		{"delivered_ratio >= 0.96", nil},
		{"e2e.p9999 <= 0.07s", nil},
	}
	for _, tt := range tests {
		th, err := ParseThreshold(tt.text)
		if err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		var got []string
		for _, b := range Evaluate([]Threshold{th}, sum) {
			got = append(got, b.Scope+":"+strconv.FormatFloat(b.Value, 'g', -1, 64))
		}
		if strings.Join(got, ",") != strings.Join(tt.breaches, ",") {
			t.Errorf("%s: breaches %v, want %v", tt.text, got, tt.breaches)
		}
	}
}

func TestParseThresholdErrors(t *testing.T) {
	for text, want := range map[string]string{
		"e2e.p42 < 5ms":     `unknown statistic "p42"`,
		"latency.p99 < 5ms": `unknown latency "latency"`,
		"e2e.p99 < 5":       `"5" is not a duration`,
		"lost = 0":          "want FIGURE OP VALUE",
		"losses == 0":       `unknown figure "losses"`,
		"lost == many":      `"many" is not a number`,
	} {
		if _, err := ParseThreshold(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

// FuzzParseThreshold checks that threshold parsing never panics and that
// what parses can be evaluated.
func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{"e2e.p9999 < 50ms", "lost == 0", "delivered_ratio >= 0.99 per step", "<", "a.b<1", " per step"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		th, err := ParseThreshold(text)
		if err != nil {
			return
		}
		Evaluate([]Threshold{th}, Summary{Paces: []StepSummary{{Verdict: "held"}}})
	})
}

// A breach says its figure with the figure's unit.
func TestBreachSaysItsUnit(t *testing.T) {
	sum := Summary{Totals: PhaseSummary{Seconds: 10, Lost: 3, Figures: Figures{E2EMS: Quantiles{P9999: 27.058086}, DeliveredRPS: 912.34}}}
	var limits []Threshold
	for _, text := range []string{"e2e.p9999 < 20ms", "lost == 0", "delivered_rps >= 1000", "delivered_ratio >= 0.99"} {
		th, err := ParseThreshold(text)
		if err != nil {
			t.Fatal(err)
		}
		limits = append(limits, th)
	}
	var got []string
	for _, b := range Evaluate(limits, sum) {
		got = append(got, b.String())
	}
	want := []string{
		`threshold "e2e.p9999 < 20ms" breached over the run: 27.06 ms`,
		`threshold "lost == 0" breached over the run: 3 events`,
		`threshold "delivered_rps >= 1000" breached over the run: 912.3 events/s`,
		`threshold "delivered_ratio >= 0.99" breached over the run: 0.0000`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("breaches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
