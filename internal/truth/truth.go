// Package truth holds the sinks of the ground-truth tests: HTTP handlers in
// front of a measuring receiver that drop, duplicate, refuse or rate-limit
// known events, so that a test knows the exact figures a run must report.
// Package measure's tests use them with the runner sending, package
// agent's with agents sending.
package truth

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perfrunner/runner/loadgen"
)

// Wrap serves one request in front of the receiver recv.
type Wrap func(w http.ResponseWriter, req *http.Request, recv http.Handler)

// Seq returns the sequence number in a request's CloudEvents id, -1 for a
// probe.
func Seq(req *http.Request) int64 {
	id := req.Header.Get("Ce-Id")
	if strings.HasPrefix(id, loadgen.ProbePrefix) {
		return -1
	}
	seq, _ := strconv.ParseInt(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	return seq
}

// Faults are the events a sink mishandles, by sequence number; the three
// sets are disjoint.
type Faults struct {
	Dropped    map[int64]bool // acknowledged, never delivered: lost
	Duplicated map[int64]bool // delivered twice
	Refused    map[int64]bool // answered 503: send failures
}

// NewFaults picks dropped, duplicated and refused events among the first
// events, from a seeded generator.
func NewFaults(events int64, dropped, duplicated, refused int, seed uint64) Faults {
	f := Faults{Dropped: map[int64]bool{}, Duplicated: map[int64]bool{}, Refused: map[int64]bool{}}
	r := rand.New(rand.NewPCG(seed, seed))
	pick := func(set map[int64]bool, n int) {
		for len(set) < n {
			if s := r.Int64N(events); !f.Dropped[s] && !f.Duplicated[s] && !f.Refused[s] {
				set[s] = true
			}
		}
	}
	pick(f.Dropped, dropped)
	pick(f.Duplicated, duplicated)
	pick(f.Refused, refused)
	return f
}

// Sink mishandles the faults' events and hands the others to the receiver.
func (f Faults) Sink(w http.ResponseWriter, req *http.Request, recv http.Handler) {
	switch seq := Seq(req); {
	case f.Dropped[seq]:
		w.WriteHeader(http.StatusAccepted)
	case f.Refused[seq]:
		w.WriteHeader(http.StatusServiceUnavailable)
	case f.Duplicated[seq]:
		recv.ServeHTTP(httptest.NewRecorder(), req.Clone(req.Context()))
		recv.ServeHTTP(w, req)
	default:
		recv.ServeHTTP(w, req)
	}
}

// Capacity returns a sink that accepts at most perSecond events a second
// (a token bucket with a tenth of a second's burst) and answers the rest
// 503; probes always pass.
func Capacity(perSecond float64) Wrap {
	var mu sync.Mutex
	tokens, last := perSecond/10, time.Now()
	return func(w http.ResponseWriter, req *http.Request, recv http.Handler) {
		mu.Lock()
		now := time.Now()
		tokens = math.Min(perSecond/10, tokens+now.Sub(last).Seconds()*perSecond)
		last = now
		ok := tokens >= 1 || Seq(req) < 0
		if ok {
			tokens--
		}
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		recv.ServeHTTP(w, req)
	}
}
