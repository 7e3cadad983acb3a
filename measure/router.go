package measure

import (
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perfrunner/runner/loadgen"
)

// bitset is a fixed-size set of sequence numbers, safe for concurrent use.
type bitset []atomic.Uint64

func newBitset(n int64) bitset { return make(bitset, (n+63)/64) }

// set adds i and reports whether it was already there.
func (b bitset) set(i int64) (was bool) {
	mask := uint64(1) << (i & 63)
	return b[i>>6].Or(mask)&mask != 0
}

func (b bitset) has(i int64) bool { return b[i>>6].Load()&(1<<(i&63)) != 0 }

// Stream is the events one sender sends: n events numbered 0..n-1. It tracks
// which were accepted and which delivered, one bit each, so that lost and
// duplicate events are counted exactly.
type Stream struct {
	Name      string
	n         int64
	accepted  bitset
	delivered bitset
	acks      atomic.Int64 // accepted events
	receipts  atomic.Int64 // delivered events that were also accepted, or not yet known to be
	tallied   atomic.Bool  // the drain is over: later receipts are not deliveries
	// offsets are the clocks of the agents that send the stream, part k
	// sending the events whose seq is k modulo len(offsets): an event's
	// intended time is on its agent's clock, ahead of the runner's by
	// its offset. Set before the first event.
	offsets atomic.Pointer[[]int64]
}

// SetClockOffsets sets the clock offsets of the agents that send s.
func (s *Stream) SetClockOffsets(offsets []time.Duration) {
	ns := make([]int64, len(offsets))
	for k, o := range offsets {
		ns[k] = int64(o)
	}
	s.offsets.Store(&ns)
}

// onRunnerClock returns the intended time of event seq, as its receipt
// carries it, on the runner's clock.
func (s *Stream) onRunnerClock(seq, intended int64) int64 {
	p := s.offsets.Load()
	if p == nil || len(*p) == 0 {
		return intended
	}
	return intended - (*p)[seq%int64(len(*p))]
}

// NewStream returns a stream of n events named name. Ids are name-seq and
// are split at their last '-', so the name may itself hold dashes.
func NewStream(name string, n int64) *Stream {
	return &Stream{Name: name, n: n, accepted: newBitset(n), delivered: newBitset(n)}
}

// ID returns the CloudEvents id of event seq.
func (s *Stream) ID(seq int64) string { return loadgen.ID(s.Name, seq) }

// Accepted records that the sink acknowledged event seq.
func (s *Stream) Accepted(seq int64) {
	s.accepted.set(seq)
	s.acks.Add(1)
}

// deliver records a receipt of seq and reports whether it is a duplicate.
func (s *Stream) deliver(seq int64) (duplicate bool) {
	if s.delivered.set(seq) {
		return true
	}
	s.receipts.Add(1)
	return false
}

// Tally counts, over sequence numbers [from, to), the accepted events not
// delivered (yet: after the drain, they are lost) and the delivered events
// never acknowledged.
func (s *Stream) Tally(from, to int64) (lost, deliveredUnacked int64) {
	for i := from; i < to; {
		if i&63 != 0 || to-i < 64 {
			a, d := s.accepted.has(i), s.delivered.has(i)
			switch {
			case a && !d:
				lost++
			case d && !a:
				deliveredUnacked++
			}
			i++
			continue
		}
		a, d := s.accepted[i>>6].Load(), s.delivered[i>>6].Load()
		lost += int64(bits.OnesCount64(a &^ d))
		deliveredUnacked += int64(bits.OnesCount64(d &^ a))
		i += 64
	}
	return lost, deliveredUnacked
}

// Len returns the number of events in the stream.
func (s *Stream) Len() int64 { return s.n }

// Router hands receipts to the streams that sent them and to probes. It is
// safe for concurrent use; a receiver calls Route for every request.
type Router struct {
	mu         sync.RWMutex
	streams    map[string]*Stream
	onReceipt  func(s *Stream, r loadgen.Receipt, duplicate bool)
	probes     chan string
	outOfRange atomic.Int64
	afterDrain atomic.Int64
}

// NewRouter returns a router that calls onReceipt for every receipt that
// belongs to a registered stream.
func NewRouter(onReceipt func(s *Stream, r loadgen.Receipt, duplicate bool)) *Router {
	return &Router{streams: map[string]*Stream{}, onReceipt: onReceipt, probes: make(chan string, 16)}
}

// Register makes s's events routable. A stream's name is unique in a run.
func (rt *Router) Register(s *Stream) {
	rt.mu.Lock()
	rt.streams[s.Name] = s
	rt.mu.Unlock()
}

// Route accounts for one receipt. It is safe for concurrent use.
func (rt *Router) Route(r loadgen.Receipt) {
	if strings.HasPrefix(r.ID, loadgen.ProbePrefix) {
		select {
		case rt.probes <- r.ID:
		default:
		}
		return
	}
	name, seq, ok := loadgen.ParseID(r.ID)
	if !ok {
		rt.outOfRange.Add(1)
		return
	}
	rt.mu.RLock()
	s := rt.streams[name]
	handle := rt.onReceipt
	rt.mu.RUnlock()
	if s == nil || seq < 0 || seq >= s.n || r.Intended == 0 {
		rt.outOfRange.Add(1)
		return
	}
	if s.tallied.Load() {
		// Its loss was already counted: delivered or lost, not both.
		rt.afterDrain.Add(1)
		return
	}
	dup := s.deliver(seq)
	r.Intended = s.onRunnerClock(seq, r.Intended)
	if handle != nil {
		handle(s, r, dup)
	}
}

// OutOfRange returns how many receipts matched no registered stream or
// carried a sequence number outside it.
func (rt *Router) OutOfRange() int64 { return rt.outOfRange.Load() }

// AfterDrain returns how many receipts arrived after their stream's drain
// was over; their events count as lost.
func (rt *Router) AfterDrain() int64 { return rt.afterDrain.Load() }
