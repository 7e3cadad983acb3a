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
	receivers map[string]*loadgen.Receiver
	finished  bool
}

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
	m := &Measurement{rec: rec, receivers: map[string]*loadgen.Receiver{}}
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

// StopReceiver stops the receiver named name, if it runs.
func (m *Measurement) StopReceiver(ctx context.Context, name string) error {
	m.mu.Lock()
	r := m.receivers[name]
	delete(m.receivers, name)
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Close(ctx)
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
	m.lateReceipts()
	err := m.rec.Close()
	return m.rec.Summary(), err
}

// lateReceipts hands the router's counts of receipts that matched no event,
// or came after their load's drain, to the recorder.
func (m *Measurement) lateReceipts() {
	m.rec.SetLateReceipts(m.router.OutOfRange(), m.router.AfterDrain())
}
