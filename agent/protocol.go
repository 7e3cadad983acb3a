// Package agent runs loads for a runner in another process or pod, and
// drives such agents from the runner. An agent is `runner agent`: an HTTP
// server on a control port. The runner opens a load on each agent with the
// agent's part of the event sequence, starts all of them at one instant,
// and pulls their records with a cursor, so that a cut connection resumes
// where it stopped; agents never reach the runner. The records feed the same
// measurement as a load in the runner's own process (see Group).
//
// The protocol is versioned by path (/v1/) and locked to the runner's
// version: a runner refuses an agent of another version, so the load's
// configuration travels as loadgen.Config's JSON.
package agent

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/perfrunner/runner/loadgen"
)

// Protocol is the control protocol's version, the path prefix /v1/.
const Protocol = 1

// Info is what GET /v1/info answers.
type Info struct {
	Protocol int    `json:"protocol"`
	Version  string `json:"version"` // the runner's build
	Host     string `json:"host"`
	Pod      string `json:"pod,omitempty"`  // from POD_NAME, when set
	Node     string `json:"node,omitempty"` // from NODE_NAME, when set
	PID      int    `json:"pid"`
	Receiver string `json:"receiver,omitempty"` // the URL of its receiver, whose receipts GET /v1/receipts pulls; empty when it runs none
	Now      int64  `json:"now_unix_ns"`        // the agent's wall clock as it answered
}

// Name is how a run names the agent: its pod, else its host and process.
func (i Info) Name() string {
	if i.Pod != "" {
		return i.Pod
	}
	return fmt.Sprintf("%s/%d", i.Host, i.PID)
}

// States of a load on an agent.
const (
	StateOpen    = "open"    // senders open, not started
	StateRunning = "running" // started: warming, waiting for the start instant, or sending
	StateDone    = "done"    // every event of its part scheduled and finished
	StateFailed  = "failed"  // ended early; Status.Error says why
)

// Status is what GET /v1/loads/{name} answers.
type Status struct {
	State      string         `json:"state"`
	Error      string         `json:"error,omitempty"`
	SendErrors map[string]int `json:"send_errors,omitempty"`
	Stopped    int64          `json:"stopped_unix_ns,omitempty"` // when the pace stopped early
	Records    int64          `json:"records"`                   // records emitted so far
	Overflow   int64          `json:"overflow"`                  // records not kept: the buffer was full
}

// ProbeRequest and ProbeAnswer are POST /v1/loads/{name}/probe.
type ProbeRequest struct {
	ID string `json:"id"`
}

// ProbeAnswer is the outcome of one probe event.
type ProbeAnswer struct {
	Acked bool   `json:"acked"`
	Error string `json:"error,omitempty"`
}

// StartRequest is POST /v1/loads/{name}/start.
type StartRequest struct {
	Start int64 `json:"start_unix_ns"` // the first event's intended time, on the agent's clock
}

// Headers of GET /v1/loads/{name}/records?from=N.
const (
	headerNext  = "Agent-Next"  // the cursor after the records in the body
	headerState = "Agent-State" // the load's state when the body was cut
	// headerEnd is the number of records the load emitted in all: with
	// a final state, the records end there.
	headerEnd = "Agent-End"
)

// A record on the wire: a byte holding its Op (and OK in the top bit),
// then varints: the sequence number, the intended time as a difference
// from the previous record's in the same body (the first from 0), and for
// OpSent the start from the intended time and the answer from the start.
// An event's two records take about 16 bytes, against 8 KiB of payload.

const okBit = 0x80

func appendRecord(b []byte, r loadgen.Record, prevIntended int64) []byte {
	op := byte(r.Op)
	if r.OK {
		op |= okBit
	}
	b = append(b, op)
	b = binary.AppendUvarint(b, uint64(r.Seq))
	b = binary.AppendVarint(b, r.Intended-prevIntended)
	if r.Op == loadgen.OpSent {
		b = binary.AppendVarint(b, r.Started-r.Intended)
		b = binary.AppendVarint(b, r.Answered-r.Started)
	}
	return b
}

var errTruncated = errors.New("agent: a record is cut short")

// decodeRecords calls fn for each record of b.
func decodeRecords(b []byte, fn func(loadgen.Record)) error {
	var prev int64
	next := func() (int64, error) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, errTruncated
		}
		b = b[n:]
		return v, nil
	}
	for len(b) > 0 {
		op := b[0]
		b = b[1:]
		r := loadgen.Record{Op: loadgen.Op(op &^ okBit), OK: op&okBit != 0}
		if r.Op > loadgen.OpSent {
			return fmt.Errorf("agent: unknown record op %d", r.Op)
		}
		seq, n := binary.Uvarint(b)
		if n <= 0 {
			return errTruncated
		}
		b = b[n:]
		r.Seq = int64(seq)
		d, err := next()
		if err != nil {
			return err
		}
		r.Intended = prev + d
		prev = r.Intended
		if r.Op == loadgen.OpSent {
			if d, err = next(); err != nil {
				return err
			}
			r.Started = r.Intended + d
			if d, err = next(); err != nil {
				return err
			}
			r.Answered = r.Started + d
		}
		fn(r)
	}
	return nil
}
