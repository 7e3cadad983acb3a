package engine

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/perfrunner/runner/results"
)

func TestMustHoldAndEnding(t *testing.T) {
	sum := &results.Summary{Paces: []results.StepSummary{
		{TargetRPS: 100, Verdict: "held"}, {TargetRPS: 200, Verdict: "broken"}, {TargetRPS: 300, Verdict: "broken"},
	}}
	if got := mustHoldBroken(sum, 0); !slices.Equal(got, []string{"2 (200/s)", "3 (300/s)"}) {
		t.Errorf("every step must hold: broken %q", got)
	}
	if got := mustHoldBroken(sum, 250); !slices.Equal(got, []string{"2 (200/s)"}) {
		t.Errorf("mustHold 250: broken %q", got)
	}
	if got := mustHoldBroken(sum, 150); got != nil {
		t.Errorf("mustHold 150: broken %q", got)
	}
	breach := &ThresholdError{Breaches: []results.Breach{{Threshold: "lost == 0", Scope: "run", Value: 3, Unit: "events"}}}
	for _, c := range []struct {
		err          error
		failOnBroken bool
		code         int
		meaning      string
	}{
		{nil, false, 0, "the run went through; 2 of 3 pace steps broke (with --fail-on-broken, exit 3)"},
		{nil, true, 0, "the run went through; 2 of 3 pace steps broke, none the scenario expects to hold (mustHold)"},
		{&BrokenError{Steps: []string{"2 (200/s)"}}, true, 3, "pace step 2 (200/s) broke, and the scenario expects it to hold"},
		{errors.Join(breach, &BrokenError{Steps: []string{"2 (200/s)", "3 (300/s)"}}), true, 3, "a threshold was breached, and pace steps 2 (200/s), 3 (300/s) broke, and the scenario expects them to hold"},
		{breach, false, 3, "1 threshold breached"},
		{fmt.Errorf("setup: %w", errors.New("boom")), false, 1, "the run failed (the errors follow)"},
		{&interruptedError{}, false, 130, "interrupted; the run was torn down"},
		{&RequirementError{}, false, 2, "the cluster lacks what the scenario requires; nothing was run"},
	} {
		e := ending(c.err, sum, c.failOnBroken, "")
		if e.Code != c.code || e.Meaning != c.meaning {
			t.Errorf("ending of %v: %d %q, want %d %q", c.err, e.Code, e.Meaning, c.code, c.meaning)
		}
	}
	if e := ending(errors.New("boom"), nil, false, `setup step "install" (helm.install)`); e.Meaning != `the run failed at setup step "install" (helm.install) (the errors follow)` {
		t.Errorf("a failed step: %q", e.Meaning)
	}
	if e := ending(nil, &results.Summary{Paces: sum.Paces[:1], Checks: []results.ThresholdCheck{{Held: true}}}, false, ""); e.Meaning != "the run went through; every pace step and threshold held" {
		t.Errorf("all held: %q", e.Meaning)
	}
	saturated := &results.Summary{Paces: append([]results.StepSummary{{TargetRPS: 50, Verdict: "broken", GeneratorOnly: true}}, sum.Paces...)}
	if e := ending(nil, saturated, false, ""); e.Meaning != "the run went through; 2 of 4 pace steps broke and 1 generator-saturated (with --fail-on-broken, exit 3)" {
		t.Errorf("a generator-saturated step: %q", e.Meaning)
	}
	if e := ending(nil, &results.Summary{Paces: saturated.Paces[:2]}, false, ""); e.Meaning != "the run went through; 1 of 2 pace steps generator-saturated (with --fail-on-broken, exit 3)" {
		t.Errorf("only a generator-saturated step: %q", e.Meaning)
	}
	if got := mustHoldBroken(saturated, 100); !slices.Equal(got, []string{"1 (50/s, generator-saturated)"}) {
		t.Errorf("mustHold 100 with a generator-saturated step: broken %q", got)
	}
}
