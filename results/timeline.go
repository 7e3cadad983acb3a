package results

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Files a recorder writes into the run directory.
const (
	TimelineFile = "timeline.tsv"
	SummaryFile  = "summary.json"
	DigestsFile  = "digests.json"            // per pace step and phase
	SecondsFile  = "second-digests.jsonl.gz" // per second, appended as seconds close
	SamplesFile  = "samples.tsv"             // raw latencies, a bounded sample per second
)

// timelineColumns are the columns of timeline.tsv; units are in the names.
var timelineColumns = []string{
	"second", "unix_s", "phase", "step", "target_rps",
	"intended", "sent", "send_failures", "dropped", "accepted", "delivered", "duplicates", "negative_e2e",
	"publish_p50_ms", "publish_p99_ms", "publish_p9999_ms", "publish_max_ms",
	"e2e_p50_ms", "e2e_p99_ms", "e2e_p9999_ms", "e2e_max_ms",
	"send_lag_p50_ms", "send_lag_p99_ms", "send_lag_max_ms", "service_p99_ms",
	"publish_cum_p9999_ms", "e2e_cum_p9999_ms",
	"sut_cpu_cores", "sut_memory_mib", "agents_cpu_cores", "agents_memory_mib", "runner_cpu_cores", "runner_memory_mib",
}

// timelineHeader is the first line of timeline.tsv. Each row covers one
// second of intended send time: its counts are events intended in that
// second, whenever they were sent or received.
var timelineHeader = strings.Join(timelineColumns, "\t") + "\n"

// Second is one second of the timeline, closed: no record changes it any
// more. An Aggregator hands it out (CloseBefore) and takes it back
// (Recycle) once its consumer has written it.
type Second struct {
	Second    int64     // on the timeline's axis
	Start     time.Time // its first instant
	Phase     string    // "-" between pace steps
	Step      int       // the pace step's index in its phase, or -1
	TargetRPS float64
	// Resources are each resource group's use over the second, as read
	// when it closed.
	Resources map[string]ResourceSecond
	b         *bucket
}

// CloseBefore closes every open second that starts before t and returns
// them in order. Records for them that come later count in their pace step
// and phase, and as late to the timeline.
func (r *Aggregator) CloseBefore(t time.Time) []Second {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		return nil
	}
	return r.closeSeconds(int64(math.Floor(float64(t.Sub(r.origin)) / 1e9)))
}

// CloseAll closes every open second.
func (r *Aggregator) CloseAll() []Second {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closeSeconds(math.MaxInt64)
}

// closeSeconds detaches the open seconds below limit. Callers hold r.mu.
func (r *Aggregator) closeSeconds(limit int64) []Second {
	r.applyPending()
	var batch []Second
	for s, w := range r.open {
		if s < limit {
			batch = append(batch, r.second(s, w))
			delete(r.open, s)
		}
	}
	if limit > r.closed {
		r.closed = limit
	}
	sort.Slice(batch, func(i, j int) bool { return batch[i].Second < batch[j].Second })
	return batch
}

// second is open second s with its bucket w. Callers hold r.mu.
func (r *Aggregator) second(s int64, w *bucket) Second {
	start := r.origin.Add(time.Duration(s) * time.Second)
	c := Second{Second: s, Start: start, b: w, Phase: "-", Step: -1, Resources: r.res.Second(s)}
	if i := r.spanAt(start); i >= 0 {
		c.Phase, c.Step, c.TargetRPS = r.spans[i].Phase, r.spans[i].Index, r.spans[i].TargetRPS
	}
	return c
}

// savedSecond is a line of the per-second digests taken from a second
// still open: the same JSON as secondDigests.
type savedSecond struct {
	secondHead
	Digests map[string]savedDigest `json:"digests"`
}

// Ended returns, in order, the open seconds from since on that ended
// before t, as they stand: what a run killed at t would lose of them if
// only closed seconds were written. The aggregator keeps them open.
func (r *Aggregator) Ended(t time.Time, since int64) []savedSecond {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		return nil
	}
	limit := int64(math.Floor(float64(t.Sub(r.origin))/1e9)) - 1 // second s ends at s+1
	if limit < since {
		return nil
	}
	r.applyPending()
	var out []savedSecond
	for s, w := range r.open {
		if s >= since && s <= limit {
			c := r.second(s, w)
			line := savedSecond{secondHead: c.head(), Digests: map[string]savedDigest{}}
			for m, d := range w.digests {
				line.Digests[metricNames[m]] = d.saved()
			}
			out = append(out, line)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Second < out[j].Second })
	return out
}

// Closed returns the second below which every second is closed.
func (r *Aggregator) Closed() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Recycle takes back seconds CloseBefore handed out, for reuse.
func (r *Aggregator) Recycle(seconds []Second) {
	for _, c := range seconds {
		c.b.reset()
	}
	r.mu.Lock()
	for _, c := range seconds {
		r.free = append(r.free, c.b)
	}
	r.mu.Unlock()
}

// spanAt returns the index of the span holding t, or -1.
func (r *Aggregator) spanAt(t time.Time) int {
	for i, s := range r.spans {
		if !t.Before(s.Start) && t.Before(s.end()) {
			return i
		}
	}
	return -1
}

// Timeline writes closed seconds into a run directory: a row of
// timeline.tsv, a line of the per-second digests, and the second's raw
// latency samples. Each Write is complete on disk when it returns: rows
// and samples are whole lines, and the digests of one Write are a gzip
// member of their own, so that a run killed at any moment leaves files
// readable up to the last Write. It is not safe for concurrent use.
type Timeline struct {
	rows    *os.File
	gzFile  *os.File
	gz      *gzip.Writer // reset onto gzFile for every member
	samples *os.File
	cum     map[string]*[2]*Digest // running publish and e2e digests per phase, through the last second written
}

// CreateTimeline creates the per-second files in dir.
func CreateTimeline(dir string) (*Timeline, error) {
	return openTimeline(dir, os.O_TRUNC, nil)
}

// openTimeline opens the per-second files in dir, truncated (flag
// os.O_TRUNC, headers written) or to append to (os.O_APPEND) after the
// seconds before, whose digests start the running ones.
func openTimeline(dir string, flag int, before []secondDigests) (*Timeline, error) {
	tl := &Timeline{cum: map[string]*[2]*Digest{}}
	for _, line := range before {
		if cum := tl.cumulative(line.Phase); cum != nil {
			cum[0].Merge(line.Digests[metricNames[Publish]])
			cum[1].Merge(line.Digests[metricNames[E2E]])
		}
	}
	var files []*os.File
	open := func(name, header string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|flag, 0o600)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		if header != "" && flag == os.O_TRUNC {
			if _, err := f.WriteString(header); err != nil {
				return nil, err
			}
		}
		return f, nil
	}
	var err error
	if tl.rows, err = open(TimelineFile, timelineHeader); err == nil {
		if tl.gzFile, err = open(SecondsFile, ""); err == nil {
			tl.samples, err = open(SamplesFile, "at_s\tmetric\tlatency_ms\n")
		}
	}
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("create timeline: %w", err)
	}
	tl.gz = gzip.NewWriter(tl.gzFile)
	return tl, nil
}

// Write writes seconds, in order, the digests as one gzip member. It stops
// at the first error: the next seconds would meet it too.
func (tl *Timeline) Write(seconds []Second) error {
	if len(seconds) == 0 {
		return nil
	}
	tl.gz.Reset(tl.gzFile)
	enc := json.NewEncoder(tl.gz)
	for _, c := range seconds {
		if err := tl.writeSecond(c, enc); err != nil {
			return err
		}
	}
	if err := tl.gz.Close(); err != nil {
		return fmt.Errorf("write per-second digests: %w", err)
	}
	return nil
}

// secondDigests is one line of the per-second digests file.
type secondDigests struct {
	secondHead
	Digests map[string]*Digest `json:"digests"`
}

// secondHead is what a line of the per-second digests says beside them.
type secondHead struct {
	Second    int64   `json:"second"`
	UnixS     int64   `json:"unix_s"`
	Phase     string  `json:"phase"`
	Step      int     `json:"step"`
	TargetRPS float64 `json:"target_rps,omitempty"`
	Counts    Counts  `json:"counts"`
	// Resources are each resource group's CPU and memory over the second.
	Resources map[string]ResourceSecond `json:"resources,omitempty"`
}

func (c Second) head() secondHead {
	return secondHead{Second: c.Second, UnixS: c.Start.Unix(), Phase: c.Phase, Step: c.Step, TargetRPS: c.TargetRPS, Counts: c.b.Counts, Resources: c.Resources}
}

// digestLine is c as a line of the per-second digests.
func digestLine(c Second) secondDigests {
	line := secondDigests{secondHead: c.head(), Digests: map[string]*Digest{}}
	for m, d := range c.b.digests {
		line.Digests[metricNames[m]] = d
	}
	return line
}

// second is a line of the per-second digests as a Second again.
func (line secondDigests) second() Second {
	b := newBucket()
	b.Counts = line.Counts
	for m, name := range metricNames {
		b.digests[m].Merge(line.Digests[name])
	}
	return Second{Second: line.Second, Start: time.Unix(line.UnixS, 0), Phase: line.Phase, Step: line.Step, TargetRPS: line.TargetRPS, Resources: line.Resources, b: b}
}

func (tl *Timeline) writeSecond(c Second, enc *json.Encoder) error {
	s, w, phase := c.Second, c.b, c.Phase
	cum := tl.cumulative(phase)
	if cum != nil {
		cum[0].Merge(w.digests[Publish])
		cum[1].Merge(w.digests[E2E])
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	p, e, l, sv := w.digests[Publish], w.digests[E2E], w.digests[SendLag], w.digests[Service]
	row := []string{
		strconv.FormatInt(s, 10), strconv.FormatInt(c.Start.Unix(), 10), phase, strconv.Itoa(c.Step), strconv.FormatFloat(c.TargetRPS, 'f', -1, 64),
		i64(w.Intended), i64(w.Sent), i64(w.SendFailures), i64(w.Dropped), i64(w.Accepted), i64(w.Delivered), i64(w.Duplicates), i64(w.NegativeE2E),
		f(p.Quantile(0.5)), f(p.Quantile(0.99)), f(p.Quantile(0.9999)), f(p.Quantile(1)),
		f(e.Quantile(0.5)), f(e.Quantile(0.99)), f(e.Quantile(0.9999)), f(e.Quantile(1)),
		f(l.Quantile(0.5)), f(l.Quantile(0.99)), f(l.Quantile(1)), f(sv.Quantile(0.99)),
		f(cumQuantile(cum, 0)), f(cumQuantile(cum, 1)),
	}
	for _, g := range resourceGroups {
		rs := c.Resources[g]
		row = append(row, formatResource(rs.CPUCores), formatResource(rs.MemoryMiB))
	}
	if _, err := tl.rows.WriteString(strings.Join(row, "\t") + "\n"); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	if err := enc.Encode(digestLine(c)); err != nil {
		return fmt.Errorf("write per-second digests: %w", err)
	}
	if w.samples == nil {
		return nil
	}
	var b strings.Builder
	for which, name := range [2]string{"publish", "e2e"} {
		for _, x := range w.samples.kept[which] {
			fmt.Fprintf(&b, "%.4f\t%s\t%.3f\n", x.atS, name, x.ms)
		}
	}
	if _, err := tl.samples.WriteString(b.String()); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	return nil
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// cumulative returns the running publish and e2e digests of a phase.
func (tl *Timeline) cumulative(phase string) *[2]*Digest {
	if phase == "-" {
		return nil
	}
	c := tl.cum[phase]
	if c == nil {
		c = &[2]*Digest{NewDigest(), NewDigest()}
		tl.cum[phase] = c
	}
	return c
}

func cumQuantile(c *[2]*Digest, i int) float64 {
	if c == nil {
		return 0
	}
	return c[i].Quantile(0.9999)
}

// Close closes the files.
func (tl *Timeline) Close() error {
	var errs *multierror.Error
	for _, err := range []error{tl.gzFile.Close(), tl.rows.Close(), tl.samples.Close()} {
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}
