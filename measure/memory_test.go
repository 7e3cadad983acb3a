package measure

import (
	"strings"
	"testing"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/pace"
)

func TestMemoryOfCountsTwoBitsPerEventAndTheSends(t *testing.T) {
	m := MemoryOf(Load{Config: loadgen.Config{Pace: []pace.Step{{RPS: 1000, Duration: 64 * time.Second}}, InFlight: 10, Connections: 2, PayloadBytes: 100}})
	if m.Events != 64000 || m.Held != 64000/4 {
		t.Errorf("events %d held %d, want 64000 and 16000 bytes", m.Events, m.Held)
	}
	if more := MemoryOf(Load{Config: loadgen.Config{Pace: []pace.Step{{RPS: 1, Duration: time.Second}}, InFlight: 20, Connections: 2, PayloadBytes: 100}}); more.Sending <= m.Sending {
		t.Errorf("twice the sends in flight need %d bytes, no more than %d", more.Sending, m.Sending)
	}
}

func TestCheckMemoryAddsHeldAndTakesTheLargestSending(t *testing.T) {
	loads := []Memory{{Held: 100 << 20, Sending: 10 << 20}, {Held: 10 << 20, Sending: 300 << 20}, {Held: 50 << 20, Sending: 20 << 20}}
	need := int64(Baseline + 160<<20 + 300<<20)
	if _, err := CheckMemory(loads, need, "test"); err != nil {
		t.Errorf("fits exactly, got %v", err)
	}
	worst, err := CheckMemory(loads, need-1, "test")
	if err == nil || worst != 1 {
		t.Fatalf("one byte short: worst %d, err %v", worst, err)
	}
	if !strings.Contains(err.Error(), "more than its budget of 716.0 MiB (test)") {
		t.Errorf("message: %v", err)
	}
}
