package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

// listen starts a receiver on loopback, closed when the test ends.
func listen(t *testing.T, router *Router) *Receiver {
	t.Helper()
	recv, err := Listen("127.0.0.1:0", router)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close(context.Background()) })
	return recv
}

func TestDirectLoadAccountsForEveryEvent(t *testing.T) {
	rec, router := newRun(t)
	recv := listen(t, router)
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

// TestEventsOnTheWire checks what a sender puts on the wire: binary-mode
// CloudEvents with the id, type, source and intended-time extension, and a
// payload of exactly the configured size.
func TestEventsOnTheWire(t *testing.T) {
	type seen struct {
		header http.Header
		body   int
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- seen{r.Header.Clone(), int(n)}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := NewSender(srv.URL, 1234, time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok, err := s.Send(context.Background(), "run-0-17", 1700000000123456789)
	if !ok || err != nil {
		t.Fatalf("Send = %v, %v", ok, err)
	}
	ev := <-got
	want := map[string]string{
		"Ce-Id": "run-0-17", "Ce-Type": EventType, "Ce-Source": EventSource, "Ce-Specversion": "1.0",
		"Ce-Intendedns": "1700000000123456789", "Content-Type": "application/octet-stream",
	}
	for k, v := range want {
		if ev.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, ev.header.Get(k), v)
		}
	}
	if ev.body != 1234 {
		t.Errorf("payload %d bytes, want 1234", ev.body)
	}
}

func TestSendFailureIsNotAnAcknowledgement(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s, _ := NewSender(srv.URL, 10, time.Second, 1)
	if ok, err := s.Send(context.Background(), "x-1", 1); ok || err == nil {
		t.Errorf("a 503 counted as acknowledged: %v %v", ok, err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	s, _ = NewSender(slow.URL, 10, 50*time.Millisecond, 1)
	if ok, err := s.Send(context.Background(), "x-1", 1); ok || errorKind(err) != "request timeout" {
		t.Errorf("a slow sink: %v %v (%s)", ok, err, errorKind(err))
	}
}

// TestInterruptedLoadJudgesOnlyWhatRan stops a three-step load during its
// first step: the steps that never began are "not-run", not broken, and the
// step cut short is judged over the time it ran.
func TestInterruptedLoadJudgesOnlyWhatRan(t *testing.T) {
	rec, router := newRun(t)
	recv := listen(t, router)
	steps, _ := pace.Parse("200:3,400:3,100:3")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	if _, err := Run(ctx, Config{Name: "m", Phase: "measure", Pace: steps, Target: recv.URL(), DrainTimeout: time.Second, MaxSendLag: time.Second}, rec, router); err == nil {
		t.Fatal("an interrupted load reported no error")
	}
	sum := rec.Summary()
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
