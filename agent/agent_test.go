package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

// TestAStateCutShortIsReadAgain cuts the first answers to the load's
// state, read once its records are all pulled, half-way through their
// headers: the state is read again and the part is not lost, while an
// agent's refusal of the same request is not retried.
func TestAStateCutShortIsReadAgain(t *testing.T) {
	local, err := StartLocal(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	up, err := url.Parse(local.Clients[0].base)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(up)
	var cut, refused atomic.Int64
	refuse := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != loadPath("load") {
			forward.ServeHTTP(w, r)
			return
		}
		if refuse.Load() {
			refused.Add(1)
			http.Error(w, "no such load", http.StatusNotFound)
			return
		}
		if cut.Add(1) > 3 {
			forward.ServeHTTP(w, r)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: appl")
		_ = buf.Flush()
		conn.Close()
	}))
	defer srv.Close()
	via, err := Dial(context.Background(), srv.URL, Version())
	if err != nil {
		t.Fatal(err)
	}
	sum, res := measureWith(t, []*Client{via}, nil)
	if len(res.Parts) != 0 {
		t.Errorf("parts lost: %+v", res.Parts)
	}
	if n := cut.Load(); n < 4 {
		t.Errorf("the state was read %d times: the test cut no answer it then read whole", n)
	}
	want := twoSteps[0].Events() + twoSteps[1].Events()
	if c := sum.Totals.Counts; c.Delivered != want || c.Dropped != 0 {
		t.Errorf("counts %+v, want %d delivered", c, want)
	}

	refuse.Store(true)
	g := &Group{cfg: loadgen.Config{Name: "load"}}
	_, err = g.status(context.Background(), via)
	var answer *AnswerError
	if !errors.As(err, &answer) || !strings.Contains(err.Error(), "no such load") || refused.Load() != 1 {
		t.Errorf("a refused state read: %v, asked %d times; want the agent's answer, asked once", err, refused.Load())
	}
}

// TestAnAgentsClockOffsetIsCorrected runs a load through two agents, the
// second with its clock 2 s ahead: the runner measures the offset within
// its stated uncertainty, corrects the agent's records by it (no negative
// or inflated end-to-end latency), and the summary records both clocks.
func TestAnAgentsClockOffsetIsCorrected(t *testing.T) {
	const skew = 2 * time.Second
	local, err := startLocal(context.Background(), 2, func(k int) []string {
		if k == 1 {
			return []string{SkewEnv + "=" + skew.String()}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	sum, _ := measureWith(t, local.Clients, nil)
	if len(sum.Agents) != 2 {
		t.Fatalf("agents in the summary: %+v", sum.Agents)
	}
	for k, a := range sum.Agents {
		want := 0.0
		if k == 1 {
			want = float64(skew) / 1e6
		}
		for _, got := range []float64{a.OffsetMS, a.OffsetEndMS} {
			// Within the stated uncertainty, and a little for the
			// scheduler between the agent's reading and its answer.
			if d := got - want; d > a.UncertaintyMS+1 || d < -a.UncertaintyMS-1 {
				t.Errorf("agent %d: offset %.3f ms, want %.3f ± %.3f ms", k, got, want, a.UncertaintyMS)
			}
		}
		if a.Agent != local.Clients[k].String() || a.Load != "load" || a.Error != "" {
			t.Errorf("agent %d: %+v", k, a)
		}
	}
	c := sum.Totals.Counts
	want := twoSteps[0].Events() + twoSteps[1].Events()
	if c.Delivered != want || c.NegativeE2E != 0 {
		t.Errorf("delivered %d of %d, %d with negative end-to-end latency", c.Delivered, want, c.NegativeE2E)
	}
	// Uncorrected, half the events would be 2 s early (negative) or,
	// corrected the wrong way, 2 s late; half the skew leaves room for a
	// slow machine's tail.
	if p99 := sum.Totals.E2EMS.P99; p99 > float64(skew.Milliseconds())/2 {
		t.Errorf("e2e p99 %.2f ms: the skewed agent's records were not corrected", p99)
	}
	// The clocks are known to about 0.1 ms here, which is more than a
	// tenth of a loopback p99: such a step is flagged, one whose p99 is
	// ten times the uncertainty is not.
	unc := max(sum.Agents[0].UncertaintyMS, sum.Agents[1].UncertaintyMS)
	for i, p := range sum.Paces {
		if want := unc > 0.1*p.E2EMS.P99; p.ClockUncertain != want {
			t.Errorf("step %d: clock_uncertain %v with an uncertainty of %.3f ms and an e2e p99 of %.3f ms", i+1, p.ClockUncertain, unc, p.E2EMS.P99)
		}
	}
}

// TestASenderBehindItsPaceIsNamed runs a load whose maxSendLag no sender
// can hold (1 ns) through two agents, then one every sender holds (1 s):
// the first marks both agents as fallen behind in the summary, the second
// neither, and each part counts its own sends.
func TestASenderBehindItsPaceIsNamed(t *testing.T) {
	local, err := StartLocal(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop()
	for _, c := range []struct {
		lag    time.Duration
		behind bool
	}{{time.Nanosecond, true}, {time.Second, false}} {
		m, err := measure.Open(t.TempDir(), results.Meta{Scenario: "behind"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		url, err := m.Receive("perf", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Run(context.Background(), measure.Load{Config: loadgen.Config{Name: "load", Pace: twoSteps, URL: url}, Phase: "measure", MaxSendLag: c.lag, Open: Opener(local.Clients)})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := m.Finish()
		if err != nil {
			t.Fatal(err)
		}
		var sends int64
		for k, a := range sum.Agents {
			sends += a.Sends
			if a.FellBehind != c.behind || res.Agents[k].FellBehind != c.behind || a.SendLagP99MS <= 0 {
				t.Errorf("maxSendLag %s: agent %s fell behind %v (send-lag p99 %.3f ms), want %v", c.lag, a.Agent, a.FellBehind, a.SendLagP99MS, c.behind)
			}
		}
		if want := twoSteps[0].Events() + twoSteps[1].Events(); sends != want || len(sum.Agents) != 2 {
			t.Errorf("maxSendLag %s: %d sends over %d agents, want %d over 2", c.lag, sends, len(sum.Agents), want)
		}
	}
}
