package measure

import (
	"fmt"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/pace"
)

// Memory is what one load needs, in bytes: Held from its start to the end of
// the run (its stream's two bits per event: accepted, delivered), Sending
// while it runs (see loadgen.Config.SendingMemory).
type Memory struct {
	Events   int64
	InFlight int
	Held     int64
	Sending  int64
}

// MemoryOf estimates what l needs at most.
func MemoryOf(l Load) Memory {
	cfg := l.Config.WithDefaults()
	events := pace.Pace{Steps: cfg.Pace}.Events()
	return Memory{
		Events:   events,
		InFlight: cfg.InFlight,
		Held:     2 * 8 * ((events + 63) / 64),
		Sending:  cfg.SendingMemory(),
	}
}

// Baseline is the memory a run takes beside its loads: the runner, its
// aggregator's open seconds, the receivers, the Helm and Kubernetes clients.
const Baseline = 256 << 20

// CheckMemory reports whether loads, run one after the other in one run,
// fit in budget bytes: every load's Held adds up, since a run keeps each
// stream until it ends, and the largest Sending comes on top. The error
// names the load that needs most (its index in loads).
func CheckMemory(loads []Memory, budget int64, from string) (worst int, err error) {
	var held, sending int64
	for i, m := range loads {
		held += m.Held
		sending = max(sending, m.Sending)
		if m.Held+m.Sending > loads[worst].Held+loads[worst].Sending {
			worst = i
		}
	}
	need := Baseline + held + sending
	if need <= budget {
		return 0, nil
	}
	w := loads[worst]
	return worst, fmt.Errorf("the run needs about %s of memory, more than its budget of %s (%s); this load alone: %d events tracked at 2 bits each (%s) and %d sends in flight with their connections (%s); lower its pace, its duration or inFlight",
		loadgen.FormatBytes(need), loadgen.FormatBytes(budget), from, w.Events, loadgen.FormatBytes(w.Held), w.InFlight, loadgen.FormatBytes(w.Sending))
}
