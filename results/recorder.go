package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/perfrunner/runner/internal/atomicfile"
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
	ended    int64            // the newest second in the last checkpoint, +1; guarded by ioMu
	open     map[int64][]byte // the checkpoint's lines, by second; guarded by ioMu
	flushErr error            // the first error of the flusher, returned by Close; guarded by ioMu
	stop     chan struct{}
	stopped  chan struct{}
	closed   bool // guarded by ioMu

	resMu sync.Mutex      // serializes the writes of resource readings
	res   *resourceWriter // created with the first reading
}

// flushEvery is how often the flusher closes seconds and checks whether a
// second has ended since the last checkpoint.
const flushEvery = 250 * time.Millisecond

// OpenSecondsFile holds, while a run measures, the seconds that have ended
// but are still open for late deliveries (see NewRecorder's horizon), as
// they stood at most flushEvery after the last one ended: what a killed
// run would otherwise lose. Recover merges it; Close removes it.
const OpenSecondsFile = "open-seconds.jsonl"

// NewRecorder creates a recorder writing into dir. Seconds are closed (their
// row written) once they are older than horizon, so deliveries that arrive
// later than that still count in their pace step and phase but not in the
// second's row.
func NewRecorder(dir string, meta Meta, horizon time.Duration) (*Recorder, error) {
	tl, err := CreateTimeline(dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{Aggregator: NewAggregator(meta), dir: dir, horizon: horizon, timeline: tl, ended: math.MinInt64, open: map[int64][]byte{}, stop: make(chan struct{}), stopped: make(chan struct{})}
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
			// After an error, the flusher stops: a full disk would fail
			// every second the same way. Close tries once more.
			if err := r.Flush(now); err != nil {
				r.ioMu.Lock()
				r.flushErr = err
				r.ioMu.Unlock()
				return
			}
		}
	}
}

// Flush closes every second older than now − horizon and writes it, then,
// when a second has ended since the last checkpoint, writes the seconds
// still open that have ended to OpenSecondsFile. Each second goes into the
// checkpoint as it stood just after it ended: copying every open second
// each time would cost the load's CPU what late deliveries to them are
// worth.
func (r *Recorder) Flush(now time.Time) error {
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	if r.closed {
		return nil
	}
	if err := r.write(r.CloseBefore(now.Add(-r.horizon))); err != nil {
		return err
	}
	ended := r.Ended(now, r.ended)
	if len(ended) == 0 {
		return nil
	}
	r.ended = ended[len(ended)-1].Second + 1
	for _, c := range ended {
		line, err := json.Marshal(c)
		if err != nil {
			return err
		}
		r.open[c.Second] = append(line, '\n')
	}
	closed := r.Closed()
	seconds := make([]int64, 0, len(r.open))
	for s := range r.open {
		if s < closed {
			delete(r.open, s) // in the timeline now
			continue
		}
		seconds = append(seconds, s)
	}
	slices.Sort(seconds)
	var b bytes.Buffer
	for _, s := range seconds {
		b.Write(r.open[s])
	}
	if err := atomicfile.Write(filepath.Join(r.dir, OpenSecondsFile), b.Bytes()); err != nil {
		return fmt.Errorf("write open seconds: %w", err)
	}
	return nil
}

// write writes closed seconds and recycles them. Callers hold r.ioMu.
func (r *Recorder) write(seconds []Second) error {
	err := r.timeline.Write(seconds)
	r.Recycle(seconds)
	return err
}

// AddResources adds readings of the observed containers' counters and
// appends them to ResourcesFile. Readings taken before the first pace step
// began are left out.
func (r *Recorder) AddResources(samples []ResourceSample) error {
	at := r.Aggregator.AddResources(samples)
	kept := samples[:0:0]
	var keptAt []float64
	for i, s := range samples {
		if !math.IsNaN(at[i]) {
			kept, keptAt = append(kept, s), append(keptAt, at[i])
		}
	}
	if len(kept) == 0 {
		return nil
	}
	r.resMu.Lock()
	defer r.resMu.Unlock()
	if r.res == nil {
		w, err := createResources(r.dir)
		if err != nil {
			return err
		}
		r.res = w
	}
	return r.res.write(keptAt, kept)
}

// Err returns the error that stopped the flusher, if any: the timeline is
// no longer written, and what is measured from then on can only reach the
// summary.
func (r *Recorder) Err() error {
	r.ioMu.Lock()
	defer r.ioMu.Unlock()
	return r.flushErr
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
	r.resMu.Lock()
	if r.res != nil {
		if err := r.res.f.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
		r.res = nil
	}
	r.resMu.Unlock()
	// Every second is in the timeline now.
	if err := os.Remove(filepath.Join(r.dir, OpenSecondsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}
