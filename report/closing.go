package report

import (
	"fmt"
	"strings"

	"github.com/perfrunner/runner/results"
)

// Ending is how a run ended: its exit code and what that code means here.
type Ending struct {
	Code    int    `json:"exit_code"`
	Meaning string `json:"meaning"`
	// Errors are the errors of a run that failed, one per failure, as the
	// terminal shows them after the closing block.
	Errors []string `json:"errors,omitempty"`
}

// StepVerdict is a pace step's verdict as shown: held, broken, not-run, or
// generator-saturated when the load generator could not keep the pace and
// nothing else broke the step (it says nothing of the system under test
// then). A step the system under test broke as well is broken.
func StepVerdict(s results.StepSummary) string {
	if s.Verdict == "broken" && s.GeneratorOnly {
		return "generator-saturated"
	}
	return s.Verdict
}

// Class is what a word of the closing block says, for its colour.
type Class int

// Classes of words in the closing block.
const (
	Plain    Class = iota
	Good           // held, ✓
	Bad            // broken, ✗, a failing exit
	Doubtful       // generator-saturated, not run, not judged
	Strong         // the sustained rate
)

// Paint colours a word of the closing block by its class; nil leaves it
// plain.
type Paint func(class Class, text string) string

func (p Paint) paint(class Class, text string) string {
	if p == nil {
		return text
	}
	return p(class, text)
}

func verdictClass(verdict string) Class {
	switch verdict {
	case "held":
		return Good
	case "broken":
		return Bad
	}
	return Doubtful
}

// closingStep is one line of the closing block's steps.
type closingStep struct {
	label, rate, verdict, reason string
}

func closingSteps(sum *results.Summary) []closingStep {
	var out []closingStep
	var warm []results.StepSummary
	if sum.Warmup != nil {
		warm = sum.Warmup.Paces
	}
	for i, s := range warm {
		label := "warmup"
		if len(warm) > 1 {
			label = fmt.Sprintf("warmup %d", i+1)
		}
		out = append(out, closingStep{label, fmt.Sprintf("%g/s", s.TargetRPS), StepVerdict(s), shownReason(s)})
	}
	for i, s := range sum.Paces {
		out = append(out, closingStep{fmt.Sprintf("step %d", i+1), fmt.Sprintf("%g/s", s.TargetRPS), StepVerdict(s), shownReason(s)})
	}
	return out
}

// shownReason is a step's reason beside its verdict: a generator-saturated
// step's verdict already says what broke it, so only its send lag follows.
func shownReason(s results.StepSummary) string {
	if StepVerdict(s) == "generator-saturated" {
		return fmt.Sprintf("send-lag p99 %.2f ms", s.SendLagMS.P99)
	}
	return s.Reason
}

// sustainedRate is the sustained rate, or "none", and why.
func sustainedRate(sum *results.Summary) (rate, why string) {
	aside := ""
	for _, s := range sum.Paces {
		if StepVerdict(s) == "generator-saturated" {
			aside = "; a generator-saturated step, which says nothing of the system under test, is left out"
			break
		}
	}
	switch {
	case sum.SustainedRPS > 0:
		return fmt.Sprintf("%g events/s", sum.SustainedRPS), "the highest held step below the lowest broken one" + aside
	case len(sum.Paces) == 0:
		return "none", "no pace step was measured"
	}
	return "none", "no measured pace step held below the lowest broken one" + aside
}

// checkValue is where and how much a threshold's figure was.
func checkValue(c results.ThresholdCheck) string {
	switch {
	case c.NotJudged != "":
		return "not judged: " + c.NotJudged
	case c.NotMeasured:
		return "not measured " + scopeWords(c.Scope)
	}
	v := results.FormatValue(c.Value, c.Unit) + " " + scopeWords(c.Scope)
	if c.Steps > 0 && c.Breached > 0 {
		v += fmt.Sprintf("; breached in %d of %d steps", c.Breached, c.Steps)
	} else if c.Steps > 1 {
		v += fmt.Sprintf(", the nearest of %d steps", c.Steps)
	}
	return v
}

func scopeWords(scope string) string {
	if scope == "run" {
		return "over the run"
	}
	return "in " + scope
}

// measuredNothing reports whether a run measured no pace step at all,
// warmup included.
func measuredNothing(sum *results.Summary) bool {
	return sum == nil || len(sum.Paces) == 0 && sum.Warmup == nil
}

// checkHeld reports whether a threshold held: judged, and not breached.
func checkHeld(c results.ThresholdCheck) bool { return c.Held && c.NotJudged == "" }

func mark(held bool) string {
	if held {
		return "✓"
	}
	return "✗"
}

// Closing returns the closing block of a run for a terminal: one verdict
// line per pace step, the sustained rate, each threshold held (✓) or not
// (✗) with its figure's value and unit, and how the run ended. sum is nil
// when nothing was measured.
func Closing(sum *results.Summary, end Ending, dir string, paint Paint) []string {
	var lines []string
	if !measuredNothing(sum) {
		lines = append(lines, "verdict")
		steps := closingSteps(sum)
		lw, rw := 0, 0
		for _, s := range steps {
			lw, rw = max(lw, len(s.label)), max(rw, len(s.rate))
		}
		for _, s := range steps {
			line := fmt.Sprintf("  %-*s %*s  %s", lw, s.label, rw, s.rate, paint.paint(verdictClass(s.verdict), s.verdict))
			if s.reason != "" {
				line += ": " + s.reason
			}
			lines = append(lines, line)
		}
		rate, why := sustainedRate(sum)
		lines = append(lines, fmt.Sprintf("  sustained rate: %s (%s)", paint.paint(Strong, rate), why))
		if len(sum.Checks) > 0 {
			lines = append(lines, "thresholds")
			tw := 0
			for _, c := range sum.Checks {
				tw = max(tw, len(c.Threshold))
			}
			for _, c := range sum.Checks {
				held := checkHeld(c)
				class := Bad
				if held {
					class = Good
				}
				lines = append(lines, fmt.Sprintf("  %s %-*s  %s", paint.paint(class, mark(held)), tw, c.Threshold, checkValue(c)))
			}
		}
	} else {
		lines = append(lines, "verdict: nothing was measured")
	}
	class := Good
	if end.Code != 0 {
		class = Bad
	}
	lines = append(lines, paint.paint(class, fmt.Sprintf("exit %d", end.Code))+": "+end.Meaning)
	if dir != "" {
		lines = append(lines, "results in "+dir)
	}
	return lines
}

// writeClosing writes the closing block into report.md: the same verdicts,
// rate, thresholds and ending as the terminal's, as markdown.
func writeClosing(b *strings.Builder, sum results.Summary, end *Ending) {
	b.WriteString("## Verdict\n\n")
	for _, s := range closingSteps(&sum) {
		fmt.Fprintf(b, "- %s at %s: **%s**", s.label, s.rate, s.verdict)
		if s.reason != "" {
			fmt.Fprintf(b, " (%s)", s.reason)
		}
		b.WriteString("\n")
	}
	if measuredNothing(&sum) {
		b.WriteString("- no pace step was measured\n")
	}
	rate, why := sustainedRate(&sum)
	fmt.Fprintf(b, "\nSustained rate: **%s** (%s).\n", rate, why)
	if len(sum.Checks) > 0 {
		b.WriteString("\n| | threshold | value |\n| --- | --- | --- |\n")
		for _, c := range sum.Checks {
			fmt.Fprintf(b, "| %s | `%s` | %s |\n", mark(checkHeld(c)), c.Threshold, checkValue(c))
		}
	}
	if end != nil {
		fmt.Fprintf(b, "\nExit code %d: %s.\n", end.Code, end.Meaning)
		if len(end.Errors) > 0 {
			b.WriteString("\n```\n" + strings.Join(end.Errors, "\n") + "\n```\n")
		}
	}
	b.WriteString("\n")
}
