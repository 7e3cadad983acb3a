package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/perfrunner/runner/internal/truth"
	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// The ground truths of package measure's tests, sent by 0, 1 and 3 agents:
// the figures must not depend on who sends.

// truthRun sends spec to a sink that wraps the measurement's receiver,
// sent by agents (nil: this process), and returns the summary.
func truthRun(t *testing.T, spec string, agents []*Client, wrap truth.Wrap) results.Summary {
	t.Helper()
	m, err := measure.Open(t.TempDir(), results.Meta{Scenario: "truth"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := loadgen.Handler(m.Route)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { wrap(w, req, recv) }))
	defer srv.Close()
	steps, err := pace.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	// The sink is judged, not the generator.
	load := measure.Load{Config: loadgen.Config{Name: "truth", Pace: steps, URL: srv.URL}, Phase: "measure", DrainTimeout: 5 * time.Second, MaxSendLag: time.Second}
	if agents != nil {
		load.Open = Opener(agents)
	}
	if _, err := m.Run(context.Background(), load); err != nil {
		t.Fatal(err)
	}
	sum, err := m.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// senders are the ways a load is sent: by the runner, one agent, three.
func senders(t *testing.T) map[string][]*Client {
	local, err := StartLocal(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(local.Stop)
	return map[string][]*Client{"the runner": nil, "1 agent": local.Clients[:1], "3 agents": local.Clients}
}

// TestExactLossAndDuplicatesWithAgents drops, duplicates and refuses known
// events: lost, duplicate and failure counts are exact, whoever sends.
func TestExactLossAndDuplicatesWithAgents(t *testing.T) {
	faults := truth.NewFaults(4000, 37, 23, 11, 9)
	for who, agents := range senders(t) {
		sum := truthRun(t, "1000:2,2000:1", agents, faults.Sink)
		tot := sum.Totals
		if tot.Intended != 4000 || tot.Sent != 4000 || tot.Lost != 37 || tot.Duplicates != 23 || tot.SendFailures != 11 || tot.Accepted != 3989 || tot.Delivered != 3952 {
			t.Errorf("sent by %s: intended %d sent %d lost %d duplicates %d failures %d accepted %d delivered %d; want 4000 4000 37 23 11 3989 3952",
				who, tot.Intended, tot.Sent, tot.Lost, tot.Duplicates, tot.SendFailures, tot.Accepted, tot.Delivered)
		}
	}
}

// TestKnownCapacityWithAgents drives a sink that accepts at most 1500
// events/s with a ramp: the same step breaks, whoever sends.
func TestKnownCapacityWithAgents(t *testing.T) {
	if raceEnabled {
		t.Skip("the generators fall behind under the race detector, which spreads the sends (see measure's TestKnownCapacityNamesTheBreakingStep)")
	}
	for who, agents := range senders(t) {
		sum := truthRun(t, "500:2,1000:2,2000:2", agents, truth.Capacity(1500))
		var verdicts []string
		for _, p := range sum.Paces {
			verdicts = append(verdicts, p.Verdict)
		}
		if fmt.Sprint(verdicts) != "[held held broken]" || sum.SustainedRPS != 1000 {
			t.Errorf("sent by %s: verdicts %v, sustained %g; want held, held, broken at 1000/s", who, verdicts, sum.SustainedRPS)
		}
	}
}
