package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/perfrunner/runner/loadgen"
)

// An agent's receiver is the run's measuring receiver in the agent's pod:
// the sink that subscriptions point at. It keeps every receipt until the
// runner pulls it with a cursor, as a load keeps its records; what does not
// fit is counted, and the runner counts the events it stood for as lost.

// Headers of GET /v1/receipts?from=N beyond those of records.
const headerOverflow = "Agent-Overflow" // receipts not kept since the agent started

// receipts is an agent receiver's receipts the runner has not pulled.
type receipts struct {
	mu   sync.Mutex
	recs backlog[loadgen.Receipt]
	wake chan struct{} // one token when receipts came while a pull waited
}

func newReceipts(limit int) *receipts {
	return &receipts{recs: backlog[loadgen.Receipt]{limit: limit}, wake: make(chan struct{}, 1)}
}

// add keeps one receipt; the receiver calls it from many goroutines.
func (rs *receipts) add(r loadgen.Receipt) {
	rs.mu.Lock()
	rs.recs.add(r)
	rs.mu.Unlock()
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

// pull answers receipts from cursor from on, their arrival moved by skew
// ns, waiting up to pullWait when none are new and up to pullLinger for
// more when there are few; what is before from is
// acknowledged and forgotten.
func (rs *receipts) pull(ctx context.Context, from, skew int64) (body []byte, next, end, overflow int64, err error) {
	began := time.Now()
	timer := time.NewTimer(pullWait)
	defer timer.Stop()
	for {
		rs.mu.Lock()
		if err := rs.recs.ack(from, "receipts"); err != nil {
			rs.mu.Unlock()
			return nil, 0, 0, 0, err
		}
		end, overflow = rs.recs.end(), rs.recs.overflow
		n := min(len(rs.recs.items), maxBody)
		if n > 0 && n < maxBody && time.Since(began) < pullLinger && ctx.Err() == nil {
			// Wait a little for more (see pullLinger).
			rs.mu.Unlock()
			select {
			case <-time.After(pullLinger - time.Since(began)):
			case <-ctx.Done():
			}
			continue
		}
		if n > 0 {
			body = make([]byte, 0, n*40)
			var prev int64
			for _, r := range rs.recs.items[:n] {
				r.Received += skew
				body = appendReceipt(body, r, prev)
				prev = r.Intended
			}
			rs.mu.Unlock()
			return body, from + int64(n), end, overflow, nil
		}
		rs.mu.Unlock()
		select {
		case <-rs.wake:
		case <-timer.C:
			return nil, from, end, overflow, nil
		case <-ctx.Done():
			return nil, from, end, overflow, nil
		}
	}
}

// A receipt on the wire: the event's id as a length and its bytes, then
// varints: the intended time as a difference from the previous receipt's
// in the same body (the first from 0), and the arrival from the intended
// time. About 40 bytes, against the event's 8 KiB of payload.

func appendReceipt(b []byte, r loadgen.Receipt, prevIntended int64) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.ID)))
	b = append(b, r.ID...)
	b = binary.AppendVarint(b, r.Intended-prevIntended)
	return binary.AppendVarint(b, r.Received-r.Intended)
}

// maxIDBytes bounds an id on the wire: far above the ids loads send.
const maxIDBytes = 4 << 10

// decodeReceipts calls fn for each receipt of b.
func decodeReceipts(b []byte, fn func(loadgen.Receipt)) error {
	var prev int64
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxIDBytes || uint64(len(b)-k) < n {
			return errTruncated
		}
		b = b[k:]
		r := loadgen.Receipt{ID: string(b[:n])}
		b = b[n:]
		d, k := binary.Varint(b)
		if k <= 0 {
			return errTruncated
		}
		b = b[k:]
		r.Intended = prev + d
		prev = r.Intended
		if d, k = binary.Varint(b); k <= 0 {
			return errTruncated
		}
		b = b[k:]
		r.Received = r.Intended + d
		fn(r)
	}
	return nil
}

// Receive starts the agent's receiver on addr and returns its URL. Its
// receipts wait for the runner's pulls from then on.
func (s *Server) Receive(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.receipts != nil {
		return "", fmt.Errorf("the agent receives already")
	}
	rs := newReceipts(s.buffer)
	recv, err := loadgen.Listen(addr, rs.add)
	if err != nil {
		return "", err
	}
	s.receipts, s.receiver = rs, recv
	return recv.URL(), nil
}

func (s *Server) pullReceipts(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rs := s.receipts
	s.mu.Unlock()
	if rs == nil {
		httpError(w, http.StatusNotFound, "this agent does not receive (start it with --receive)")
		return
	}
	from, ok := cursor(w, r, "receipts")
	if !ok {
		return
	}
	body, next, end, overflow, err := rs.pull(r.Context(), from, int64(s.skew))
	writePull(w, body, next, end, err, headerOverflow, strconv.FormatInt(overflow, 10))
}
