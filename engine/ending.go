package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
)

// Exit codes of runner exec, as the README documents them.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitBadInput    = 2
	ExitThreshold   = 3 // a threshold breached, or a step that must hold broke
	ExitInterrupted = 130
)

// BrokenError is a run that went through, under FailOnBroken, in which
// pace steps the scenario expects to hold broke.
type BrokenError struct {
	Steps []string // "2 (1000/s)": the step's number and rate
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("pace %s broke, and the scenario expects %s to hold", plural(len(e.Steps), "step", "steps")+" "+strings.Join(e.Steps, ", "), plural(len(e.Steps), "it", "them"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// mustHoldBroken returns the measured pace steps that broke among those
// the scenario expects to hold: those at or below its mustHold rate, or
// every one when it gives none.
func mustHoldBroken(sum *results.Summary, mustHold float64) []string {
	if sum == nil {
		return nil
	}
	var out []string
	for i, p := range sum.Paces {
		if p.Verdict == "broken" && (mustHold == 0 || p.TargetRPS <= mustHold) {
			label := fmt.Sprintf("%d (%g/s", i+1, p.TargetRPS)
			if p.GeneratorOnly {
				label += ", generator-saturated"
			}
			out = append(out, label+")")
		}
	}
	return out
}

// ExitCode is the exit code of a run that returned err.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, new(*RequirementError)):
		return ExitBadInput
	case errors.As(err, new(*ThresholdError)), errors.As(err, new(*BrokenError)):
		return ExitThreshold
	}
	return ExitFailed
}

// ending says what a run's exit code means, in words: what went wrong,
// or, when nothing did, what the figures said. failedAt names the step
// where the run failed (`setup step "install" (helm.install)`), "" when
// no step did.
func ending(err error, sum *results.Summary, failOnBroken bool, failedAt string) report.Ending {
	code := ExitCode(err)
	e := report.Ending{Code: code}
	if code == ExitFailed || code == ExitBadInput {
		e.Errors = errorLines(err)
	}
	var te *ThresholdError
	var be *BrokenError
	switch {
	case code == ExitInterrupted:
		e.Meaning = "interrupted; the run was torn down"
	case code == ExitBadInput:
		e.Meaning = "the cluster lacks what the scenario requires; nothing was run"
	case errors.As(err, &te) && errors.As(err, &be):
		e.Meaning = fmt.Sprintf("%s breached, and %s", plural(len(te.Breaches), "a threshold was", "thresholds were"), be.Error())
	case errors.As(err, &te):
		e.Meaning = fmt.Sprintf("%d %s breached", len(te.Breaches), plural(len(te.Breaches), "threshold", "thresholds"))
	case errors.As(err, &be):
		e.Meaning = be.Error()
	case code == ExitFailed && diskFull(err):
		e.Meaning = "the run failed: the disk is full (the error follows)"
	case code == ExitFailed && failedAt != "":
		e.Meaning = "the run failed at " + failedAt + " (the errors follow)"
	case code == ExitFailed:
		e.Meaning = "the run failed (the errors follow)"
	default:
		e.Meaning = "the run went through"
		if sum == nil {
			break
		}
		broken, saturated := 0, 0
		for _, p := range sum.Paces {
			switch {
			case p.Verdict == "broken" && p.GeneratorOnly:
				saturated++
			case p.Verdict == "broken":
				broken++
			}
		}
		what := ""
		switch {
		case broken > 0 && saturated > 0:
			what = fmt.Sprintf("%d of %d pace steps broke and %d generator-saturated", broken, len(sum.Paces), saturated)
		case broken > 0:
			what = fmt.Sprintf("%d of %d pace steps broke", broken, len(sum.Paces))
		case saturated > 0:
			what = fmt.Sprintf("%d of %d pace steps generator-saturated", saturated, len(sum.Paces))
		}
		switch {
		case what == "" && len(sum.Checks) > 0:
			e.Meaning += "; every pace step and threshold held"
		case what == "":
			e.Meaning += "; every pace step held"
		case !failOnBroken:
			e.Meaning += fmt.Sprintf("; %s (with --fail-on-broken, exit %d)", what, ExitThreshold)
		default:
			e.Meaning += fmt.Sprintf("; %s, none the scenario expects to hold (mustHold)", what)
		}
	}
	return e
}

// errorLines are a failed run's errors, one per failure.
func errorLines(err error) []string {
	var many *multierror.Error
	if errors.As(err, &many) {
		return errorStrings(many.Errors)
	}
	return []string{err.Error()}
}
