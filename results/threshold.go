package results

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Threshold is one pass/fail rule on a run's figures, written as
// `<figure> <op> <value>[ per step]`, for example `e2e.p9999 < 50ms`,
// `lost == 0`, `delivered_ratio >= 0.99 per step`. Over the run it applies
// to the measure phase's totals; `per step` applies it to every measured
// pace step, and a step that breaches it is broken.
type Threshold struct {
	Text    string
	figure  string
	op      string
	value   float64 // in the figure's unit: ms for latencies
	perStep bool
}

var latencyFigures = map[string]func(Figures) Quantiles{
	"publish":  func(f Figures) Quantiles { return f.PublishMS },
	"e2e":      func(f Figures) Quantiles { return f.E2EMS },
	"send_lag": func(f Figures) Quantiles { return f.SendLagMS },
	"service":  func(f Figures) Quantiles { return f.ServiceMS },
}

var statistics = map[string]func(Quantiles) float64{
	"p50": func(q Quantiles) float64 { return q.P50 }, "p90": func(q Quantiles) float64 { return q.P90 },
	"p99": func(q Quantiles) float64 { return q.P99 }, "p999": func(q Quantiles) float64 { return q.P999 },
	"p9999": func(q Quantiles) float64 { return q.P9999 }, "max": func(q Quantiles) float64 { return q.Max },
	"mean": func(q Quantiles) float64 { return q.Mean },
}

// window figures a threshold can name besides latencies.
type figureSource struct {
	counts    Counts
	figures   Figures
	lost      int64
	target    float64 // 0 over the run
	seconds   float64
	resources *Resources
}

// resourceFigures are the figures of the observed systems' resource use a
// threshold can name: the systems under test's (the runner's on local),
// NaN when they were not measured.
var resourceFigures = map[string]func(*ResourceFigures) float64{
	"cpu_per_event_us": func(f *ResourceFigures) float64 {
		if f.CPUPerEventUS == nil {
			return math.NaN()
		}
		return *f.CPUPerEventUS
	},
	"cpu_cores":         func(f *ResourceFigures) float64 { return f.CPUCores },
	"memory_mib":        func(f *ResourceFigures) float64 { return f.MemoryMiB },
	"memory_growth_mib": func(f *ResourceFigures) float64 { return f.MemoryGrowthMiB },
}

var countFigures = map[string]func(figureSource) float64{
	"lost":              func(s figureSource) float64 { return float64(s.lost) },
	"dropped":           func(s figureSource) float64 { return float64(s.counts.Dropped) },
	"send_failures":     func(s figureSource) float64 { return float64(s.counts.SendFailures) },
	"duplicates":        func(s figureSource) float64 { return float64(s.counts.Duplicates) },
	"delivered":         func(s figureSource) float64 { return float64(s.counts.Delivered) },
	"delivered_rps":     func(s figureSource) float64 { return s.figures.DeliveredRPS },
	"achieved_send_rps": func(s figureSource) float64 { return s.figures.AchievedSendRPS },
	"delivered_ratio": func(s figureSource) float64 {
		if s.counts.Intended == 0 {
			return 0
		}
		return float64(s.counts.Delivered) / float64(s.counts.Intended)
	},
}

var operators = []string{"<=", ">=", "==", "!=", "<", ">"}

// ParseThreshold parses one threshold; the error says what is wrong and
// what would be right.
func ParseThreshold(text string) (Threshold, error) {
	t := Threshold{Text: text}
	rest := strings.TrimSpace(text)
	if r, ok := strings.CutSuffix(rest, " per step"); ok {
		t.perStep, rest = true, strings.TrimSpace(r)
	}
	for _, op := range operators {
		if i := strings.Index(rest, op); i > 0 {
			t.figure, t.op = strings.TrimSpace(rest[:i]), op
			rest = strings.TrimSpace(rest[i+len(op):])
			break
		}
	}
	if t.op == "" {
		return t, fmt.Errorf("threshold %q: want FIGURE OP VALUE, e.g. \"e2e.p9999 < 50ms\" (operators: %s)", text, strings.Join(operators, " "))
	}
	if name, stat, ok := strings.Cut(t.figure, "."); ok {
		if latencyFigures[name] == nil {
			return t, fmt.Errorf("threshold %q: unknown latency %q (publish, e2e, send_lag, service)", text, name)
		}
		if statistics[stat] == nil {
			return t, fmt.Errorf("threshold %q: unknown statistic %q (p50, p90, p99, p999, p9999, max, mean)", text, stat)
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			return t, fmt.Errorf("threshold %q: %q is not a duration such as 50ms", text, rest)
		}
		t.value = float64(d) / float64(time.Millisecond)
		return t, nil
	}
	if countFigures[t.figure] == nil && resourceFigures[t.figure] == nil {
		return t, fmt.Errorf("threshold %q: unknown figure %q (a latency such as e2e.p9999, or one of lost, dropped, send_failures, duplicates, delivered, delivered_rps, achieved_send_rps, delivered_ratio, cpu_per_event_us, cpu_cores, memory_mib, memory_growth_mib)", text, t.figure)
	}
	v, err := strconv.ParseFloat(rest, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return t, fmt.Errorf("threshold %q: %q is not a number", text, rest)
	}
	t.value = v
	return t, nil
}

// NeedsDelivery reports whether the threshold names a figure only events
// delivered to the run's receivers give: end-to-end latency, deliveries,
// losses or duplicates. Over a send-only load it is not evaluated.
func (t Threshold) NeedsDelivery() bool {
	name, _, _ := strings.Cut(t.figure, ".")
	switch name {
	case "e2e", "lost", "duplicates", "delivered", "delivered_rps", "delivered_ratio":
		return true
	}
	return false
}

// PerStep reports whether the threshold applies to each pace step.
func (t Threshold) PerStep() bool { return t.perStep }

// check returns the figure's value and whether the threshold holds on it.
func (t Threshold) check(s figureSource) (float64, bool) {
	var v float64
	if name, stat, ok := strings.Cut(t.figure, "."); ok {
		v = statistics[stat](latencyFigures[name](s.figures))
	} else if f := resourceFigures[t.figure]; f != nil {
		v = math.NaN()
		if obs := s.resources.Observed(); obs != nil {
			v = f(obs)
		}
		if math.IsNaN(v) {
			return v, false // not measured: the threshold cannot hold
		}
	} else {
		v = countFigures[t.figure](s)
	}
	switch t.op {
	case "<":
		return v, v < t.value
	case "<=":
		return v, v <= t.value
	case ">":
		return v, v > t.value
	case ">=":
		return v, v >= t.value
	case "==":
		return v, v == t.value
	}
	return v, v != t.value
}

// Breach is a threshold that did not hold, and where.
type Breach struct {
	Threshold string  `json:"threshold"`
	Scope     string  `json:"scope"` // "run" or "step N (R/s)"
	Value     float64 `json:"value"`
	Unit      string  `json:"unit,omitempty"` // ms, events, events/s, µs, cores, MiB, or none for a ratio
	// NotMeasured is a breach of a threshold whose figure the run could
	// not measure (resource figures with no reading); Value is 0.
	NotMeasured bool `json:"not_measured,omitempty"`
}

// breach returns the breach of t over scope with value v.
func (t Threshold) breach(scope string, v float64) Breach {
	if math.IsNaN(v) {
		return Breach{Threshold: t.Text, Scope: scope, Unit: t.unit(), NotMeasured: true}
	}
	return Breach{Threshold: t.Text, Scope: scope, Value: v, Unit: t.unit()}
}

func (b Breach) String() string {
	if b.NotMeasured {
		return fmt.Sprintf("threshold %q not met over the %s: its figure was not measured (no resource reading of the systems under test covered it; see summary.json resources)", b.Threshold, b.Scope)
	}
	return fmt.Sprintf("threshold %q breached over the %s: %s", b.Threshold, b.Scope, FormatValue(b.Value, b.Unit))
}

// unit is the unit of the threshold's figure.
func (t Threshold) unit() string {
	switch {
	case t.figure == "cpu_per_event_us":
		return "µs"
	case t.figure == "cpu_cores":
		return "cores"
	case strings.HasSuffix(t.figure, "_mib"):
		return "MiB"
	case strings.Contains(t.figure, "."):
		return "ms"
	case strings.HasSuffix(t.figure, "_rps"):
		return "events/s"
	case t.figure == "delivered_ratio":
		return ""
	}
	return "events"
}

// Evaluate checks every threshold against a summary.
func Evaluate(thresholds []Threshold, sum Summary) []Breach {
	var out []Breach
	for _, t := range thresholds {
		if t.perStep {
			for i, p := range sum.Paces {
				if !t.appliesTo(p) {
					continue
				}
				if v, ok := t.check(stepSource(p)); !ok {
					out = append(out, t.breach(stepScope(i, p), v))
				}
			}
			continue
		}
		if sum.AllSendOnly() && t.NeedsDelivery() {
			continue
		}
		if v, ok := t.check(runSource(sum)); !ok {
			out = append(out, t.breach("run", v))
		}
	}
	return out
}

// ThresholdCheck is one threshold as judged, whether it held or not: the
// value of its figure over the run, or for a per-step threshold at the step
// nearest its limit (the first that breached it, when one did).
type ThresholdCheck struct {
	Threshold   string  `json:"threshold"`
	Held        bool    `json:"held"`
	Scope       string  `json:"scope"` // "run" or "step N (R/s)"; empty when nothing was judged
	Value       float64 `json:"value"`
	Unit        string  `json:"unit,omitempty"`
	NotMeasured bool    `json:"not_measured,omitempty"`
	// Per step: the steps judged and those that breached it.
	Steps    int `json:"steps,omitempty"`
	Breached int `json:"steps_breached,omitempty"`
	// NotJudged says why the threshold was not judged at all: its figure
	// needs deliveries and every load was send-only.
	NotJudged string `json:"not_judged,omitempty"`
}

// Check judges every threshold against a summary, held or not, in the
// scenario's order.
func Check(thresholds []Threshold, sum Summary) []ThresholdCheck {
	out := make([]ThresholdCheck, 0, len(thresholds))
	for _, t := range thresholds {
		c := ThresholdCheck{Threshold: t.Text, Held: true, Unit: t.unit()}
		if !t.perStep {
			if sum.AllSendOnly() && t.NeedsDelivery() {
				c.NotJudged = "every load was send-only: no delivery was measured"
				out = append(out, c)
				continue
			}
			v, ok := t.check(runSource(sum))
			c.Scope, c.Held = "run", ok
			c.set(v)
			out = append(out, c)
			continue
		}
		for i, p := range sum.Paces {
			if !t.appliesTo(p) {
				continue
			}
			v, ok := t.check(stepSource(p))
			c.Steps++
			if !ok {
				c.Breached++
			}
			// The step shown: the first breach, else the one nearest the
			// limit.
			if c.Steps == 1 || !ok && c.Held || c.Held && t.nearer(v, c.Value) {
				c.Scope = stepScope(i, p)
				c.set(v)
			}
			c.Held = c.Held && ok
		}
		if c.Steps == 0 {
			c.NotJudged = "no measured pace step it applies to"
		}
		out = append(out, c)
	}
	return out
}

func (c *ThresholdCheck) set(v float64) {
	c.Value, c.NotMeasured = v, math.IsNaN(v)
	if c.NotMeasured {
		c.Value = 0
	}
}

// nearer reports whether v lies nearer t's limit than w, or beyond it.
func (t Threshold) nearer(v, w float64) bool {
	switch t.op {
	case "<", "<=":
		return v > w
	case ">", ">=":
		return v < w
	}
	return false
}

// FormatValue writes a figure's value with its unit: "7.85 ms",
// "612.3 events/s", "0.9870".
func FormatValue(v float64, unit string) string {
	switch unit {
	case "ms":
		return fmt.Sprintf("%.2f ms", v)
	case "events/s":
		return fmt.Sprintf("%.1f events/s", v)
	case "":
		return fmt.Sprintf("%.4f", v)
	case "µs", "MiB":
		return fmt.Sprintf("%.1f %s", v, unit)
	case "cores":
		return fmt.Sprintf("%.3f cores", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// appliesTo reports whether a per-step threshold is judged on step p: it
// ran, and delivered if the figure needs deliveries.
func (t Threshold) appliesTo(p StepSummary) bool {
	return p.Verdict != "not-run" && !(p.SendOnly && t.NeedsDelivery())
}

// stepScope names the i-th measured step in breaches and checks.
func stepScope(i int, p StepSummary) string { return fmt.Sprintf("step %d (%g/s)", i+1, p.TargetRPS) }

// runSource is the measure phase's totals, which a threshold over the run
// judges.
func runSource(sum Summary) figureSource {
	t := sum.Totals
	return figureSource{counts: t.Counts, figures: t.Figures, lost: t.Lost, seconds: t.Seconds, resources: t.Resources}
}

func stepSource(p StepSummary) figureSource {
	return figureSource{counts: p.Counts, figures: p.Figures, lost: p.Lost, target: p.TargetRPS, seconds: p.Seconds, resources: p.Resources}
}

// AllSendOnly reports whether every measured step was send-only.
func (sum Summary) AllSendOnly() bool {
	for _, p := range sum.Paces {
		if !p.SendOnly {
			return false
		}
	}
	return len(sum.Paces) > 0
}
