package agent

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/results"
)

// measureRemote runs twoSteps from this process to the receiver of
// agents[0], with every agent's receipts pulled into the measurement as
// the receiver "perf", and returns the summary.
func measureRemote(t *testing.T, agents []*Client) results.Summary {
	t.Helper()
	m, err := measure.Open(t.TempDir(), results.Meta{Scenario: "receivers"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := AttachReceivers(context.Background(), "perf", agents, m.Route)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddRemote("perf", rs); err != nil {
		t.Fatal(err)
	}
	load := measure.Load{Config: loadgen.Config{Name: "load", Pace: twoSteps, URL: agents[0].Info.Receiver}, Phase: "measure", DrainTimeout: 5 * time.Second}
	if _, err := m.Run(context.Background(), load); err != nil {
		t.Fatal(err)
	}
	sum, err := m.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.StopReceivers(context.Background()); err != nil {
		t.Errorf("stopping the receivers: %v", err)
	}
	return sum
}

// TestAgentsReceiptsFeedTheMeasurement sends a load to a receiving agent
// whose clock is 2 s ahead, beside a second receiving agent that gets
// nothing: every event counts as delivered exactly once, the arrival times
// are moved to the runner's clock (no negative or 2 s latency), and the
// summary names both receivers' clocks.
func TestAgentsReceiptsFeedTheMeasurement(t *testing.T) {
	const skew = 2 * time.Second
	local, err := startLocal(context.Background(), 2, func(k int) []string {
		if k == 0 {
			return []string{SkewEnv + "=" + skew.String()}
		}
		return nil
	}, "--receive", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	sum := measureRemote(t, local.Clients)
	want := twoSteps[0].Events() + twoSteps[1].Events()
	c := sum.Totals.Counts
	if c.Delivered != want || c.Duplicates != 0 || sum.Totals.Lost != 0 || c.NegativeE2E != 0 || sum.OutOfRange != 0 {
		t.Errorf("counts %+v lost %d out of range %d, want %d delivered once", c, sum.Totals.Lost, sum.OutOfRange, want)
	}
	// Uncorrected, every latency would be 2 s more (or negative, counted
	// above); half the skew tells the two apart with room for a slow
	// machine's tail (107 ms was seen under -race on two cores).
	if p99 := sum.Totals.E2EMS.P99; p99 > float64(skew.Milliseconds())/2 {
		t.Errorf("e2e p99 %.2f ms: the skewed receiver's arrivals were not corrected", p99)
	}
	var receivers []results.AgentPart
	for _, a := range sum.Agents {
		if a.Load == "receiver/perf" {
			receivers = append(receivers, a)
		}
	}
	if len(receivers) != 2 {
		t.Fatalf("receivers in the summary: %+v", sum.Agents)
	}
	if got := receivers[0].OffsetMS; got < 1999 || got > 2001 || receivers[0].Error != "" {
		t.Errorf("receiver 0: %+v, want an offset of 2000 ms", receivers[0])
	}
}

// TestAReceiptPullResumesFromItsCursor pulls a receiving agent's receipts
// through connections cut after a few kilobytes: nothing is lost or
// counted twice.
func TestAReceiptPullResumesFromItsCursor(t *testing.T) {
	local, err := startLocal(context.Background(), 1, nil, "--receive", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	p := newCuttingProxy(t, strings.TrimPrefix(local.Clients[0].base, "http://"), 3000)
	via, err := Dial(context.Background(), "http://"+p.ln.Addr().String(), Version())
	if err != nil {
		t.Fatal(err)
	}
	sum := measureRemote(t, []*Client{via})
	want := twoSteps[0].Events() + twoSteps[1].Events()
	if c := sum.Totals.Counts; c.Delivered != want || c.Duplicates != 0 || sum.Totals.Lost != 0 {
		t.Errorf("counts %+v lost %d, want %d delivered once", c, sum.Totals.Lost, want)
	}
	if p.cuts.Load() < 5 {
		t.Errorf("only %d connections were cut: the test did not test resuming", p.cuts.Load())
	}
}

// TestReceiptsThatDoNotFitAreCounted gives a receiving agent room for 100
// receipts and sends it 400 events before the runner pulls: the run
// counts the rest as lost and says why, in the summary and on close.
func TestReceiptsThatDoNotFitAreCounted(t *testing.T) {
	srv := NewServer(Version())
	srv.buffer = 100
	url, err := srv.Receive("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	c, err := Dial(context.Background(), hs.URL, Version())
	if err != nil {
		t.Fatal(err)
	}
	gen, err := loadgen.New(loadgen.Config{Name: "load", Pace: twoSteps[:1], URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	// The load's senders report from many goroutines.
	var sent atomic.Int64
	if _, err := gen.Run(context.Background(), time.Now(), outputFunc(func(r loadgen.Record) {
		if r.Op == loadgen.OpSent && r.OK {
			sent.Add(1)
		}
	})); err != nil {
		t.Fatal(err)
	}
	var got int
	rs, err := AttachReceivers(context.Background(), "perf", []*Client{c}, func(loadgen.Receipt) { got++ })
	if err != nil {
		t.Fatal(err)
	}
	err = rs.Close(context.Background())
	if got != 100 || err == nil || !strings.Contains(err.Error(), "300 receipts did not fit") {
		t.Errorf("%d receipts of %d sent routed, close said %v; want 100, and 300 that did not fit", got, sent.Load(), err)
	}
	if parts := rs.AgentParts(); len(parts) != 1 || !strings.Contains(parts[0].Error, "did not fit") {
		t.Errorf("parts %+v", parts)
	}
}

type outputFunc func(loadgen.Record)

func (f outputFunc) Add(r loadgen.Record) { f(r) }

// TestAnAgentOfAnotherBuildIsRefused dials an agent of another version:
// the runner refuses it, naming both versions.
func TestAnAgentOfAnotherBuildIsRefused(t *testing.T) {
	hs := httptest.NewServer(NewServer("v0.0.1 github.com/perfrunner/runner@(devel)").Handler())
	defer hs.Close()
	_, err := Dial(context.Background(), hs.URL, Version())
	if err == nil || !strings.Contains(err.Error(), "is runner v0.0.1") || !strings.Contains(err.Error(), "must be of the runner's own build") {
		t.Errorf("dialing an agent of another build: %v", err)
	}
}
