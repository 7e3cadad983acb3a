package measure

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/results"
)

// CloseHorizon is how long a second of the timeline stays open for late
// receipts before its row is written.
const CloseHorizon = 10 * time.Second

// Measurement is one run's measurement. It is safe for concurrent use.
type Measurement struct {
	rec    *results.Recorder
	router *Router

	mu        sync.Mutex
	receivers map[string]receiver
	finished  bool
}

// receiver is a receiver whose receipts feed the measurement: one in this
// process (loadgen.Receiver), or a Remote.
type receiver interface {
	Close(ctx context.Context) error
}

// Remote is a receiver in other processes or pods whose receipts something
// pulls and hands to Route (the agent package's Receivers).
type Remote interface {
	// Sync returns once every receipt the receiver took before the call
	// has been routed, or ctx ends.
	Sync(ctx context.Context) error
	// Uncertainty bounds the error of its arrival times on this process's
	// clock.
	Uncertainty() time.Duration
	// AgentParts describes its clocks for the summary.
	AgentParts() []results.AgentPart
	Close(ctx context.Context) error
}

// syncTimeout bounds the wait for a remote receiver's receipts at the end
// of a load's drain.
const syncTimeout = 10 * time.Second

// Open starts the measurement of a run whose files go to dir.
func Open(dir string, meta results.Meta, thresholds []results.Threshold) (*Measurement, error) {
	return open(dir, meta, thresholds, CloseHorizon)
}

func open(dir string, meta results.Meta, thresholds []results.Threshold, horizon time.Duration) (*Measurement, error) {
	rec, err := results.NewRecorder(dir, meta, horizon)
	if err != nil {
		return nil, err
	}
	rec.SetThresholds(thresholds)
	m := &Measurement{rec: rec, receivers: map[string]receiver{}}
	m.router = NewRouter(func(_ *Stream, r loadgen.Receipt, dup bool) {
		rec.Delivered(r.Intended, r.Received, dup)
	})
	return m, nil
}

// Receive starts a receiver named name on addr ("127.0.0.1:0" for any
// free port) whose receipts feed the measurement, and returns its URL.
func (m *Measurement) Receive(name, addr string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.receivers[name]; dup {
		return "", fmt.Errorf("a receiver named %q is already running", name)
	}
	recv, err := loadgen.Listen(addr, m.router.Route)
	if err != nil {
		return "", err
	}
	m.receivers[name] = recv
	return recv.URL(), nil
}

// Route accounts for a receipt of a remote receiver.
func (m *Measurement) Route(r loadgen.Receipt) { m.router.Route(r) }

// AddRemote makes a remote receiver one of the measurement's, named name:
// its receipts come through Route, each load's drain waits for it, and its
// clock uncertainty counts in the steps' end-to-end figures.
func (m *Measurement) AddRemote(name string, r Remote) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.receivers[name]; dup {
		return fmt.Errorf("a receiver named %q is already running", name)
	}
	m.receivers[name] = r
	return nil
}

// remotes returns the remote receivers, by name.
func (m *Measurement) remotes() []Remote {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.receivers))
	for n, r := range m.receivers {
		if _, ok := r.(Remote); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]Remote, len(names))
	for k, n := range names {
		out[k] = m.receivers[n].(Remote)
	}
	return out
}

// syncRemotes waits until the remote receivers' receipts so far are routed.
func (m *Measurement) syncRemotes() {
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	for _, r := range m.remotes() {
		_ = r.Sync(ctx)
	}
}

// StopReceiver stops the receiver named name, if it runs.
func (m *Measurement) StopReceiver(ctx context.Context, name string) error {
	m.mu.Lock()
	r := m.receivers[name]
	delete(m.receivers, name)
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	err := r.Close(ctx)
	// A remote receiver stopped before the measurement finished: its
	// clocks go in the summary from here.
	m.mu.Lock()
	finished := m.finished
	m.mu.Unlock()
	if rem, ok := r.(Remote); ok && !finished {
		m.rec.AddAgentParts(rem.AgentParts()...)
	}
	return err
}

// StopReceivers stops every receiver still running.
func (m *Measurement) StopReceivers(ctx context.Context) error {
	m.mu.Lock()
	names := make([]string, 0, len(m.receivers))
	for n := range m.receivers {
		names = append(names, n)
	}
	m.mu.Unlock()
	sort.Strings(names)
	var errs *multierror.Error
	for _, n := range names {
		if err := m.StopReceiver(ctx, n); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

// Step returns the figures of pace step i, numbered as Result.Steps are.
func (m *Measurement) Step(i int) results.StepSummary { return m.rec.StepSummary(i) }

// Summary returns the run's summary as it stands.
func (m *Measurement) Summary() results.Summary { return m.rec.Summary() }

// Finish closes the measurement: the last seconds of the timeline and the
// final summary are written, and the summary returned. Receipts that come
// later count nowhere; a second Finish returns the same summary.
func (m *Measurement) Finish() (results.Summary, error) {
	m.mu.Lock()
	already := m.finished
	m.finished = true
	m.mu.Unlock()
	if already {
		return m.rec.Summary(), nil
	}
	m.syncRemotes()
	for _, r := range m.remotes() {
		m.rec.AddAgentParts(r.AgentParts()...)
	}
	m.lateReceipts()
	err := m.rec.Close()
	return m.rec.Summary(), err
}

// lateReceipts hands the router's counts of receipts that matched no event,
// or came after their load's drain, to the recorder.
func (m *Measurement) lateReceipts() {
	m.rec.SetLateReceipts(m.router.OutOfRange(), m.router.AfterDrain())
}
