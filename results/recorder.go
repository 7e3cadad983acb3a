package results

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Recorder is a run's Aggregator with the consumer of its closed seconds:
// once a second, a flusher closes the seconds older than the close horizon
// and writes them to the run directory's timeline files. The aggregation
// itself does no I/O; only the flusher, WriteSummary and Close write. It is
// safe for concurrent use.
type Recorder struct {
	*Aggregator
	dir     string
	horizon time.Duration

	ioMu     sync.Mutex // serializes closing and writing seconds
	timeline *Timeline
	flushErr error // the first error of the flusher, returned by Close; guarded by ioMu
	stop     chan struct{}
	stopped  chan struct{}
	closed   bool // guarded by ioMu
}

// flushEvery is how often the flusher closes seconds.
const flushEvery = time.Second

// NewRecorder creates a recorder writing into dir. Seconds are closed (their
// row written) once they are older than horizon, so deliveries that arrive
// later than that still count in their pace step and phase but not in the
// second's row.
func NewRecorder(dir string, meta Meta, horizon time.Duration) (*Recorder, error) {
	tl, err := CreateTimeline(dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{Aggregator: NewAggregator(meta), dir: dir, horizon: horizon, timeline: tl, stop: make(chan struct{}), stopped: make(chan struct{})}
	go r.flushPeriodically()
	return r, nil
}

func (r *Recorder) flushPeriodically() {
	defer close(r.stopped)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			if err := r.Flush(now); err != nil {
				r.ioMu.Lock()
				if r.flushErr == nil {
					r.flushErr = err
				}
				r.ioMu.Unlock()
			}
		}
	}
}

// Flush closes every second older than now − horizon and writes it.
func (r *Recorder) Flush(now time.Time) error {
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	if r.closed {
		return nil
	}
	return r.write(r.CloseBefore(now.Add(-r.horizon)))
}

// write writes closed seconds and recycles them. Callers hold r.ioMu.
func (r *Recorder) write(seconds []Second) error {
	err := r.timeline.Write(seconds)
	r.Recycle(seconds)
	return err
}

// WriteSummary writes summary.json and digests.json as they stand.
func (r *Recorder) WriteSummary() error {
	digests, err := r.Digests()
	if err != nil {
		return fmt.Errorf("save digests: %w", err)
	}
	return WriteSummary(r.dir, r.Summary(), digests)
}

// Close stops the flusher, closes and writes every open second, writes the
// summary and digests one last time and closes the files. It returns the
// first error the flusher met, if any, with its own.
func (r *Recorder) Close() error {
	r.ioMu.Lock()
	if r.closed {
		r.ioMu.Unlock()
		return errors.New("the recorder is closed already")
	}
	r.ioMu.Unlock()
	close(r.stop)
	<-r.stopped
	r.Aggregator.Close()

	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	r.closed = true
	var errs *multierror.Error
	if r.flushErr != nil {
		errs = multierror.Append(errs, r.flushErr)
	}
	if err := r.write(r.CloseAll()); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.WriteSummary(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.timeline.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
