package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestConnGateGrowsToItsLimit(t *testing.T) {
	g := newConnGate(2, 3)
	soon := func() time.Time { return time.Now().Add(50 * time.Millisecond) }
	if !g.acquire(soon()) || !g.acquire(soon()) {
		t.Fatal("the first two tokens were not free")
	}
	start := time.Now()
	if !g.acquire(soon()) {
		t.Fatal("the gate did not grow below its limit")
	}
	if waited := time.Since(start); waited < growAfter {
		t.Errorf("grew after %s, before a send had waited %s", waited, growAfter)
	}
	if g.acquire(soon()) {
		t.Fatal("the gate grew beyond its limit")
	}
	g.release()
	if !g.acquire(soon()) {
		t.Error("a released token was not handed on")
	}
}

// TestSenderOpensWhatASlowSinkNeeds sends 1000 events/s to a sink that
// answers after 20 ms: the sender, starting with one connection, must open
// about the 20 the pace needs, and soon enough that the later events wait
// for none.
func TestSenderOpensWhatASlowSinkNeeds(t *testing.T) {
	const answer = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(answer)
	}))
	defer srv.Close()
	s, err := NewSender(srv.URL, 10, 2*time.Second, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 400
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if ok, err := s.Send(context.Background(), "slow-"+strconv.Itoa(i), start.UnixNano()); !ok {
				t.Errorf("send %d: %v", i, err)
			}
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	opened := s.conns.opened.Load()
	if opened < 20 || opened > 80 {
		t.Errorf("opened %d connections for 1000/s at %s an answer, want about 20", opened, answer)
	}
	var slow int
	for _, d := range took[n/2:] {
		if d > answer+15*time.Millisecond {
			slow++
		}
	}
	if slow > n/50 {
		t.Errorf("%d of the last %d sends took over %s", slow, n/2, answer+15*time.Millisecond)
	}
}
