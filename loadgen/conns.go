package loadgen

import (
	"sync/atomic"
	"time"
)

// growAfter is how long a send waits for a busy connection to come free
// before the sender may open one more, and how often it may.
//
// An HTTP client that dials whenever every connection is busy feeds on its
// own stalls: a pause of a few milliseconds at 10 000 events/s leaves dozens
// of sends waiting, each dials, the dials and the server's accepts take the
// CPU the answers need, more sends find every connection busy, and the client
// climbs to its bound of connections within a second. Measured with
// `loadbench -at 10000 -trial 3s`, a fresh process each time: dialing at
// once, three of five trials had p99s of 58–171 ms; one more connection for
// every send that waited a millisecond, two of six still climbed to 869 and
// 1024 connections (p99 100 and 184 ms); at most one more per millisecond,
// eight of eight stayed under 4.2 ms with 25–38 connections. A slow sink
// still gets what its pace needs, at a millisecond a connection: one that
// answers in 20 ms at 1000/s has its 20 after about 25 ms
// (TestSenderOpensWhatASlowSinkNeeds).
const growAfter = time.Millisecond

// connGate bounds a sender's sends in flight, and so its connections (an
// HTTP/1.1 connection carries one request at a time), at a number that
// starts at what the load's first events need and grows by one when a send
// has waited growAfter, at most once per growAfter, up to the sender's bound.
type connGate struct {
	free   chan struct{} // a token per connection not in use
	opened atomic.Int64  // tokens in circulation
	grown  atomic.Int64  // when the last token was added, Unix ns
	limit  int64
}

func newConnGate(start, limit int) *connGate {
	start = max(1, min(start, limit))
	g := &connGate{free: make(chan struct{}, limit), limit: int64(limit)}
	for range start {
		g.free <- struct{}{}
	}
	g.opened.Store(int64(start))
	return g
}

// acquire takes a token, waiting at most until deadline, and reports
// whether it got one.
func (g *connGate) acquire(deadline time.Time) bool {
	select {
	case <-g.free:
		return true
	default:
	}
	wait := time.NewTimer(min(growAfter, time.Until(deadline)))
	defer wait.Stop()
	select {
	case <-g.free:
		return true
	case <-wait.C:
	}
	if g.grow() {
		return true
	}
	wait.Reset(time.Until(deadline))
	select {
	case <-g.free:
		return true
	case <-wait.C:
		return false
	}
}

// grow adds a token for the caller, unless the gate is at its limit or
// grew less than growAfter ago.
func (g *connGate) grow() bool {
	now := time.Now().UnixNano()
	last := g.grown.Load()
	if now-last < int64(growAfter) || !g.grown.CompareAndSwap(last, now) {
		return false
	}
	for {
		n := g.opened.Load()
		if n >= g.limit {
			return false
		}
		if g.opened.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives back a token taken by acquire.
func (g *connGate) release() { g.free <- struct{}{} }
