package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// newRun returns a recorder in a temporary directory and a router feeding it.
func newRun(t *testing.T) (*results.Recorder, *Router) {
	t.Helper()
	rec, err := results.NewRecorder(t.TempDir(), results.Meta{Scenario: "t", PaceSet: "p", Target: "local"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	router := NewRouter(func(_ *Stream, r Receipt, dup bool) { rec.Delivered(r.Intended, r.Received, dup) })
	return rec, router
}

func TestDirectLoadAccountsForEveryEvent(t *testing.T) {
	rec, router := newRun(t)
	recv, err := Listen("127.0.0.1:0", router)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close(context.Background())
	steps, _ := pace.Parse("1000:2,2000:2")
	res, err := Run(context.Background(), Config{Name: "m", Phase: "measure", Pace: steps, Target: recv.URL()}, rec, router)
	if err != nil {
		t.Fatal(err)
	}
	sum := rec.Summary()
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
