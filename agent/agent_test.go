package agent

import (
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

func TestMain(m *testing.M) {
	RunIfChild()
	os.Exit(m.Run())
}

var twoSteps = []pace.Step{{RPS: 400, Duration: time.Second}, {RPS: 800, Duration: time.Second}}

// measureWith runs twoSteps to a receiver of the measurement, sent by the
// given agents (none: in this process), and returns the summary.
func measureWith(t *testing.T, agents []*Client, kill func()) (results.Summary, measure.Result) {
	t.Helper()
	m, err := measure.Open(t.TempDir(), results.Meta{Scenario: "agents"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, err := m.Receive("perf", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	load := measure.Load{Config: loadgen.Config{Name: "load", Pace: twoSteps, URL: url}, Phase: "measure", DrainTimeout: 5 * time.Second}
	if agents != nil {
		load.Open = Opener(agents)
	}
	if kill != nil {
		time.AfterFunc(700*time.Millisecond, kill)
	}
	res, err := m.Run(context.Background(), load)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return sum, res
}

// TestAgentsCountAsOneSender checks that one load sent by 0, 1 and 3
// agents gives the same exact counts per pace step: every event intended
// once, sent, accepted and delivered once, none lost or duplicated.
func TestAgentsCountAsOneSender(t *testing.T) {
	local, err := StartLocal(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	for _, agents := range [][]*Client{nil, local.Clients[:1], local.Clients} {
		sum, _ := measureWith(t, agents, nil)
		if len(sum.Paces) != 2 {
			t.Fatalf("%d agents: %d pace steps", len(agents), len(sum.Paces))
		}
		for i, p := range sum.Paces {
			want := twoSteps[i].Events()
			c := p.Counts
			if c.Intended != want || c.Sent != want || c.Accepted != want || c.Delivered != want || c.Dropped != 0 || c.SendFailures != 0 || c.Duplicates != 0 || p.Lost != 0 {
				t.Errorf("%d agents, step %d: %+v lost %d, want %d of everything", len(agents), i+1, c, p.Lost, want)
			}
		}
	}
}

// TestAKilledAgentsShareIsDropped kills one of three agents mid-load: the
// load finishes, the part of the killed agent not reported counts as
// dropped, the result names the agent, and every event is still accounted
// for exactly once.
func TestAKilledAgentsShareIsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the lost agent")
	}
	local, err := StartLocal(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	victim := local.Clients[1].String()
	sum, res := measureWith(t, local.Clients, func() { _ = local.Kill(1) })
	if len(res.Parts) != 1 || res.Parts[0].Agent != victim || !strings.Contains(res.Parts[0].Error, "lost") {
		t.Fatalf("parts lost: %+v, want %s", res.Parts, victim)
	}
	c := sum.Totals.Counts
	want := twoSteps[0].Events() + twoSteps[1].Events()
	if c.Intended != want || c.Sent+c.Dropped != want || c.Dropped != res.Parts[0].Dropped || c.Dropped < want/3-400 {
		t.Errorf("counts %+v, %d dropped by the lost part; want %d intended, each sent or dropped, about a third dropped", c, res.Parts[0].Dropped, want)
	}
	// An event the agent sent before it died, whose record it could not
	// hand on, is delivered but never acknowledged: counted as such.
	if sum.Totals.Lost != 0 || c.Delivered != c.Accepted+sum.Totals.DeliveredUnacked || sum.Totals.DeliveredUnacked > 50 {
		t.Errorf("delivered %d of %d accepted, %d unacknowledged, %d lost", c.Delivered, c.Accepted, sum.Totals.DeliveredUnacked, sum.Totals.Lost)
	}
}

// cuttingProxy forwards TCP connections to upstream and cuts each after it
// has carried budget bytes of answers, as a flaky port-forward would.
type cuttingProxy struct {
	ln   net.Listener
	cuts atomic.Int64
}

func newCuttingProxy(t *testing.T, upstream string, budget int64) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, down); up.Close() }()
			go func() {
				n, _ := io.CopyN(down, up, budget)
				if n == budget {
					p.cuts.Add(1)
				}
				down.Close()
				up.Close()
			}()
		}
	}()
	return p
}

// TestACutConnectionResumesFromItsCursor pulls every agent's records
// through connections cut after a few kilobytes: the pulls resume from
// their cursors, and the counts are exact, nothing counted twice.
func TestACutConnectionResumesFromItsCursor(t *testing.T) {
	local, err := StartLocal(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	var agents []*Client
	var proxies []*cuttingProxy
	for _, c := range local.Clients {
		p := newCuttingProxy(t, strings.TrimPrefix(c.base, "http://"), 3000)
		proxies = append(proxies, p)
		via, err := Dial(context.Background(), "http://"+p.ln.Addr().String(), Version())
		if err != nil {
			t.Fatal(err)
		}
		agents = append(agents, via)
	}
	sum, res := measureWith(t, agents, nil)
	if len(res.Parts) != 0 {
		t.Errorf("parts lost: %+v", res.Parts)
	}
	want := twoSteps[0].Events() + twoSteps[1].Events()
	c := sum.Totals.Counts
	if c.Intended != want || c.Sent != want || c.Delivered != want || c.Duplicates != 0 || sum.Totals.Lost != 0 || c.Dropped != 0 {
		t.Errorf("counts %+v lost %d, want %d of everything", c, sum.Totals.Lost, want)
	}
	if cuts := proxies[0].cuts.Load() + proxies[1].cuts.Load(); cuts < 5 {
		t.Errorf("only %d connections were cut: the test did not test resuming", cuts)
	}
}
