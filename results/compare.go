package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Comparison sets runs side by side, pace step by pace step, against the
// first run (the base).
type Comparison struct {
	Runs      []string       `json:"runs"`      // run directories, the base first
	Tolerance float64        `json:"tolerance"` // relative, e.g. 0.1
	Steps     []ComparedStep `json:"steps"`
	Verdict   string         `json:"verdict"` // mismatch when steps differ in target; else worse if any step of any run is worse, else better or same
}

// ComparedStep is one measured pace step across the runs.
type ComparedStep struct {
	Index     int           `json:"index"`
	TargetRPS float64       `json:"target_rps"`
	Runs      []*StepFigure `json:"runs"` // nil where a run has no such step
}

// StepFigure is one run's figures for a step, with changes against the base.
type StepFigure struct {
	AchievedSendRPS float64            `json:"achieved_send_rps"`
	DeliveredRPS    float64            `json:"delivered_rps"`
	PublishMS       Quantiles          `json:"publish_ms"`
	E2EMS           Quantiles          `json:"e2e_ms,omitzero"`
	TargetRPS       float64            `json:"target_rps"`
	SendFailures    int64              `json:"send_failures"`
	Dropped         int64              `json:"dropped"`
	Lost            int64              `json:"lost"`
	CPUPerEventUS   *float64           `json:"cpu_per_event_us,omitempty"` // of the systems under test (the runner's process on local); absent when not measured
	StepVerdict     string             `json:"step_verdict"`               // held or broken, in its own run
	Delta           map[string]float64 `json:"delta,omitempty"`            // relative change against the base, per figure
	Verdict         string             `json:"verdict"`                    // base, same, better or worse
	Why             []string           `json:"why,omitempty"`
}

// compared figures: name, value, and whether higher is better.
func comparedFigures(s *StepFigure) []struct {
	name         string
	value        float64
	higherBetter bool
} {
	return []struct {
		name         string
		value        float64
		higherBetter bool
	}{
		{"achieved_send_rps", s.AchievedSendRPS, true}, {"delivered_rps", s.DeliveredRPS, true},
		{"publish_p50", s.PublishMS.P50, false}, {"publish_p99", s.PublishMS.P99, false}, {"publish_p9999", s.PublishMS.P9999, false},
		{"e2e_p50", e2e(s, P50), false}, {"e2e_p99", e2e(s, P99), false}, {"e2e_p9999", e2e(s, P9999), false},
		{"cpu_per_event_us", s.cpuPerEvent(), false},
	}
}

// cpuPerEvent is the step's CPU per event in µs, NaN when not measured.
func (s *StepFigure) cpuPerEvent() float64 {
	if s.CPUPerEventUS == nil {
		return math.NaN()
	}
	return *s.CPUPerEventUS
}

// e2e returns a statistic of s's end-to-end latencies, NaN when not
// measured.
func e2e(s *StepFigure, stat func(Quantiles) float64) float64 {
	return Figures{E2EMS: s.E2EMS}.E2E(stat)
}

// Compare compares runs' summaries. Steps are matched by position among the
// measured steps; a run is worse on a step when a figure moved the wrong way
// by more than tolerance, or it failed or lost more events.
func Compare(dirs []string, sums []Summary, tolerance float64) Comparison {
	c := Comparison{Runs: dirs, Tolerance: tolerance, Verdict: "same"}
	n := 0
	for _, s := range sums {
		n = max(n, len(s.Paces))
	}
	for i := 0; i < n; i++ {
		cs := ComparedStep{Index: i}
		var base *StepFigure
		for r, s := range sums {
			if i >= len(s.Paces) {
				cs.Runs = append(cs.Runs, nil)
				continue
			}
			p := s.Paces[i]
			if cs.TargetRPS == 0 {
				cs.TargetRPS = p.TargetRPS
			}
			f := &StepFigure{AchievedSendRPS: p.AchievedSendRPS, DeliveredRPS: p.DeliveredRPS, PublishMS: p.PublishMS, E2EMS: p.E2EMS,
				TargetRPS: p.TargetRPS, SendFailures: p.SendFailures, Dropped: p.Dropped, Lost: p.Lost, StepVerdict: p.Verdict}
			if o := p.Resources.Observed(); o != nil {
				f.CPUPerEventUS = o.CPUPerEventUS
			}
			switch {
			case r == 0:
				f.Verdict, base = "base", f
			case base != nil && p.TargetRPS != base.TargetRPS:
				// Different pace sets: the same position is not the same step.
				f.Verdict = "mismatch"
				f.Why = []string{fmt.Sprintf("target %g/s, base %g/s", p.TargetRPS, base.TargetRPS)}
				c.Verdict = "mismatch"
			default:
				judgeAgainst(f, base, tolerance)
				switch {
				case f.Verdict == "worse" && c.Verdict != "mismatch":
					c.Verdict = "worse"
				case f.Verdict == "better" && c.Verdict == "same":
					c.Verdict = "better"
				}
			}
			cs.Runs = append(cs.Runs, f)
		}
		c.Steps = append(c.Steps, cs)
	}
	return c
}

func judgeAgainst(f, base *StepFigure, tolerance float64) {
	f.Verdict = "same"
	if base == nil {
		f.Verdict = "new"
		return
	}
	f.Delta = map[string]float64{}
	better := false
	bf := comparedFigures(base)
	for k, x := range comparedFigures(f) {
		b := bf[k].value
		if b == 0 || math.IsNaN(b) || math.IsNaN(x.value) {
			continue
		}
		d := (x.value - b) / b
		f.Delta[x.name] = d
		worse := d > tolerance
		improved := d < -tolerance
		if x.higherBetter {
			worse, improved = d < -tolerance, d > tolerance
		}
		if worse {
			f.Why = append(f.Why, fmt.Sprintf("%s %+.1f%%", x.name, d*100))
		}
		better = better || improved
	}
	if f.SendFailures > base.SendFailures {
		f.Why = append(f.Why, fmt.Sprintf("send failures %d → %d", base.SendFailures, f.SendFailures))
	}
	if f.Lost > base.Lost {
		f.Why = append(f.Why, fmt.Sprintf("lost %d → %d", base.Lost, f.Lost))
	}
	if f.Dropped > base.Dropped {
		f.Why = append(f.Why, fmt.Sprintf("dropped %d → %d", base.Dropped, f.Dropped))
	}
	if f.StepVerdict == "broken" && base.StepVerdict != "broken" {
		f.Why = append(f.Why, "the step broke")
	}
	switch {
	case len(f.Why) > 0:
		f.Verdict = "worse"
	case better:
		f.Verdict = "better"
	}
}

// WriteJSON writes the comparison as JSON.
func (c Comparison) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteTable writes the comparison for a terminal (markdown false) or as a
// markdown table.
func (c Comparison) WriteTable(w io.Writer, markdown bool) error {
	var b bytes.Buffer
	header := []string{"step", "target/s", "run", "sent/s", "delivered/s", "pub p50", "pub p99", "pub p99.99", "e2e p50", "e2e p99", "e2e p99.99", "CPU/event µs", "failed", "lost", "verdict"}
	rows := [][]string{}
	for _, s := range c.Steps {
		for r, f := range s.Runs {
			if f == nil {
				rows = append(rows, []string{fmt.Sprint(s.Index + 1), fmt.Sprintf("%g", s.TargetRPS), fmt.Sprint(r + 1), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "missing"})
				continue
			}
			cell := func(v float64, key string) string {
				out := FormatMS(v)
				switch {
				case math.IsNaN(v):
					out = "—"
				case strings.HasSuffix(key, "_rps"), strings.HasSuffix(key, "_us"):
					out = fmt.Sprintf("%.1f", v)
				}
				if d, ok := f.Delta[key]; ok {
					out += fmt.Sprintf(" (%+.0f%%)", d*100)
				}
				return out
			}
			verdict := f.Verdict
			if len(f.Why) > 0 {
				verdict += ": " + strings.Join(f.Why, ", ")
			}
			rows = append(rows, []string{
				fmt.Sprint(s.Index + 1), fmt.Sprintf("%g", s.TargetRPS), fmt.Sprint(r + 1),
				cell(f.AchievedSendRPS, "achieved_send_rps"), cell(f.DeliveredRPS, "delivered_rps"),
				cell(f.PublishMS.P50, "publish_p50"), cell(f.PublishMS.P99, "publish_p99"), cell(f.PublishMS.P9999, "publish_p9999"),
				cell(e2e(f, P50), "e2e_p50"), cell(e2e(f, P99), "e2e_p99"), cell(e2e(f, P9999), "e2e_p9999"),
				cell(f.cpuPerEvent(), "cpu_per_event_us"), fmt.Sprint(f.SendFailures), fmt.Sprint(f.Lost), verdict,
			})
		}
	}
	for i, d := range c.Runs {
		fmt.Fprintf(&b, "run %d: %s\n", i+1, d)
	}
	fmt.Fprintf(&b, "latencies in ms; CPU per event in µs of CPU time of the systems under test (on local, the runner's process) per event delivered; changes against run 1; tolerance %.0f%%\n\n", c.Tolerance*100)
	if markdown {
		b.WriteString("| " + strings.Join(header, " | ") + " |\n|" + strings.Repeat(" --- |", len(header)) + "\n")
		for _, r := range rows {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
	} else {
		widths := make([]int, len(header))
		for i, h := range header {
			widths[i] = len([]rune(h))
		}
		for _, r := range rows {
			for i, cell := range r[:len(r)-1] {
				widths[i] = max(widths[i], len([]rune(cell)))
			}
		}
		line := func(cells []string) {
			for i, cell := range cells {
				if i == len(cells)-1 {
					b.WriteString(cell)
					continue
				}
				fmt.Fprintf(&b, "%-*s  ", widths[i], cell)
			}
			b.WriteString("\n")
		}
		line(header)
		for _, r := range rows {
			line(r)
		}
	}
	fmt.Fprintf(&b, "\nverdict: %s\n", c.Verdict)
	_, err := w.Write(b.Bytes())
	return err
}
