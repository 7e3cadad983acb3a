package measure

import (
	"context"
	"testing"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// newRun returns a measurement in a temporary directory.
func newRun(t *testing.T) *Measurement {
	t.Helper()
	m, err := open(t.TempDir(), results.Meta{Scenario: "t", PaceSet: "p", Target: "local"}, nil, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Finish() })
	return m
}

// listen starts a receiver on loopback, stopped when the test ends, and
// returns its URL.
func listen(t *testing.T, m *Measurement) string {
	t.Helper()
	url, err := m.Receive("t", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.StopReceivers(context.Background()) })
	return url
}

// measureLoad is a measured load of steps to url.
func measureLoad(steps []pace.Step, url string) Load {
	return Load{Config: loadgen.Config{Name: "m", Pace: steps, URL: url}, Phase: "measure"}
}

func TestDirectLoadAccountsForEveryEvent(t *testing.T) {
	m := newRun(t)
	url := listen(t, m)
	steps, _ := pace.Parse("1000:2,2000:2")
	res, err := m.Run(context.Background(), measureLoad(steps, url))
	if err != nil {
		t.Fatal(err)
	}
	sum := m.Summary()
	tot := sum.Totals
	if tot.Intended != 6000 || tot.Sent != 6000 || tot.Accepted != 6000 || tot.Delivered != 6000 || tot.Lost != 0 || tot.Dropped != 0 || tot.Duplicates != 0 {
		t.Errorf("totals = %+v, errors %v", tot, res.TopErrors())
	}
	if len(sum.Paces) != 2 || sum.Paces[0].Intended != 2000 || sum.Paces[1].Intended != 4000 {
		t.Errorf("paces = %+v", sum.Paces)
	}
	t.Logf("publish %+v", tot.PublishMS)
	t.Logf("e2e %+v", tot.E2EMS)
	t.Logf("send lag %+v", tot.SendLagMS)
}

// TestInterruptedLoadJudgesOnlyWhatRan stops a three-step load during its
// first step: the steps that never began are "not-run", not broken, and the
// step cut short is judged over the time it ran.
func TestInterruptedLoadJudgesOnlyWhatRan(t *testing.T) {
	m := newRun(t)
	url := listen(t, m)
	steps, _ := pace.Parse("200:3,400:3,100:3")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	load := measureLoad(steps, url)
	load.DrainTimeout, load.MaxSendLag = time.Second, time.Second
	if _, err := m.Run(ctx, load); err == nil {
		t.Fatal("an interrupted load reported no error")
	}
	sum := m.Summary()
	if v := sum.Paces[0].Verdict; v != "held" || sum.Paces[0].Seconds >= 3 {
		t.Errorf("the step cut short: %s (%s) over %g s", v, sum.Paces[0].Reason, sum.Paces[0].Seconds)
	}
	for _, p := range sum.Paces[1:] {
		if p.Verdict != "not-run" {
			t.Errorf("a step that never began: %s (%s)", p.Verdict, p.Reason)
		}
	}
	if sum.SustainedRPS != 200 {
		t.Errorf("sustained %g, want 200", sum.SustainedRPS)
	}
}
