package results

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/perfrunner/runner/internal/atomicfile"

	"github.com/hashicorp/go-multierror"
)

// timelineColumns are the columns of timeline.tsv; units are in the names.
var timelineColumns = []string{
	"second", "unix_s", "phase", "step", "target_rps",
	"intended", "sent", "send_failures", "dropped", "accepted", "delivered", "duplicates", "negative_e2e",
	"publish_p50_ms", "publish_p99_ms", "publish_p9999_ms", "publish_max_ms",
	"e2e_p50_ms", "e2e_p99_ms", "e2e_p9999_ms", "e2e_max_ms",
	"send_lag_p50_ms", "send_lag_p99_ms", "send_lag_max_ms", "service_p99_ms",
	"publish_cum_p9999_ms", "e2e_cum_p9999_ms",
}

// timelineHeader is the first line of timeline.tsv. Each row covers one
// second of intended send time: its counts are events intended in that
// second, whenever they were sent or received.
var timelineHeader = strings.Join(timelineColumns, "\t") + "\n"

// Flush closes every second older than now − horizon: it writes the
// second's timeline row and digests and recycles its window.
func (r *Recorder) Flush(now time.Time) error {
	r.mu.Lock()
	if len(r.spans) == 0 {
		r.mu.Unlock()
		return nil
	}
	limit := int64(math.Floor(float64(now.Add(-r.horizon).Sub(r.origin)) / 1e9))
	r.mu.Unlock()
	return r.closeBefore(limit)
}

// closedSecond is a second detached from the open set, being written.
type closedSecond struct {
	second int64
	w      *window
	phase  string
	step   int
	target float64
}

// closeBefore closes the open seconds below limit, in order. The windows are
// detached under r.mu and written outside it, so that encoding and I/O never
// hold up the senders and the receiver, which record under r.mu.
func (r *Recorder) closeBefore(limit int64) error {
	r.ioMu.Lock()
	defer r.ioMu.Unlock()

	r.mu.Lock()
	r.applyPending()
	var batch []closedSecond
	for s, w := range r.open {
		if s < limit {
			c := closedSecond{second: s, w: w, phase: "-", step: -1}
			if i := r.spanAt(r.origin.Add(time.Duration(s) * time.Second)); i >= 0 {
				c.phase, c.step, c.target = r.spans[i].Phase, r.spans[i].Index, r.spans[i].TargetRPS
			}
			batch = append(batch, c)
			delete(r.open, s)
		}
	}
	if limit > r.closed {
		r.closed = limit
	}
	origin := r.origin
	r.mu.Unlock()

	sort.Slice(batch, func(i, j int) bool { return batch[i].second < batch[j].second })
	var errs *multierror.Error
	for _, c := range batch {
		if err := r.writeSecond(origin, c); err != nil {
			errs = multierror.Append(errs, err)
		}
		c.w.reset()
	}
	if len(batch) > 0 {
		if err := r.gz.Flush(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}

	r.mu.Lock()
	for _, c := range batch {
		r.free = append(r.free, c.w)
	}
	r.mu.Unlock()
	return errs.ErrorOrNil()
}

// spanAt returns the index of the span holding t, or -1.
func (r *Recorder) spanAt(t time.Time) int {
	for i, s := range r.spans {
		if !t.Before(s.Start) && t.Before(s.end()) {
			return i
		}
	}
	return -1
}

// secondDigests is one line of the per-second digests file.
type secondDigests struct {
	Second  int64              `json:"second"`
	UnixS   int64              `json:"unix_s"`
	Phase   string             `json:"phase"`
	Step    int                `json:"step"`
	Counts  Counts             `json:"counts"`
	Digests map[string]*Digest `json:"digests"`
}

// writeSecond writes one closed second. Callers hold r.ioMu.
func (r *Recorder) writeSecond(origin time.Time, c closedSecond) error {
	s, w, phase, step, target := c.second, c.w, c.phase, c.step, c.target
	start := origin.Add(time.Duration(s) * time.Second)
	cum := r.cumulative(phase)
	if cum != nil {
		cum[0].Merge(w.digests[Publish])
		cum[1].Merge(w.digests[E2E])
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	p, e, l, sv := w.digests[Publish], w.digests[E2E], w.digests[SendLag], w.digests[Service]
	row := []string{
		strconv.FormatInt(s, 10), strconv.FormatInt(start.Unix(), 10), phase, strconv.Itoa(step), strconv.FormatFloat(target, 'f', -1, 64),
		i64(w.Intended), i64(w.Sent), i64(w.SendFailures), i64(w.Dropped), i64(w.Accepted), i64(w.Delivered), i64(w.Duplicates), i64(w.NegativeE2E),
		f(p.Quantile(0.5)), f(p.Quantile(0.99)), f(p.Quantile(0.9999)), f(p.Quantile(1)),
		f(e.Quantile(0.5)), f(e.Quantile(0.99)), f(e.Quantile(0.9999)), f(e.Quantile(1)),
		f(l.Quantile(0.5)), f(l.Quantile(0.99)), f(l.Quantile(1)), f(sv.Quantile(0.99)),
		f(cumQuantile(cum, 0)), f(cumQuantile(cum, 1)),
	}
	if _, err := r.timeline.WriteString(strings.Join(row, "\t") + "\n"); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	line := secondDigests{Second: s, UnixS: start.Unix(), Phase: phase, Step: step, Counts: w.Counts, Digests: map[string]*Digest{}}
	for m, d := range w.digests {
		line.Digests[metricNames[m]] = d
	}
	if err := r.enc.Encode(line); err != nil {
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
	if _, err := r.samplesOut.WriteString(b.String()); err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	return nil
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

// cumulative returns the running publish and e2e digests of a phase.
// Callers hold r.ioMu.
func (r *Recorder) cumulative(phase string) *[2]*Digest {
	if phase == "-" {
		return nil
	}
	if r.cum == nil {
		r.cum = map[string]*[2]*Digest{}
	}
	c := r.cum[phase]
	if c == nil {
		c = &[2]*Digest{NewDigest(), NewDigest()}
		r.cum[phase] = c
	}
	return c
}

func cumQuantile(c *[2]*Digest, i int) float64 {
	if c == nil {
		return 0
	}
	return c[i].Quantile(0.9999)
}

// Close closes every open second and the recorder's files, after writing
// the summary and digests one last time.
func (r *Recorder) Close() error {
	close(r.stop)
	<-r.stopped
	var errs *multierror.Error
	if err := r.closeBefore(math.MaxInt64); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.WriteSummary(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.gz.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.gzFile.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.timeline.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := r.samplesOut.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	return errs.ErrorOrNil()
}

// StepSummary is one pace step's figures in summary.json.
type StepSummary struct {
	Phase       string  `json:"phase"`
	Index       int     `json:"index"`
	TargetRPS   float64 `json:"target_rps"`
	Seconds     float64 `json:"seconds"`
	StartSecond float64 `json:"start_second"` // on the timeline's axis
	Verdict     string  `json:"verdict"`      // held, broken, or not-run
	Reason      string  `json:"reason,omitempty"`
	Counts
	StepExtra
	Figures
}

// PhaseSummary is a phase's totals in summary.json.
type PhaseSummary struct {
	Seconds float64 `json:"seconds"`
	Counts
	Lost             int64 `json:"lost"`
	DeliveredUnacked int64 `json:"delivered_unacknowledged"`
	Figures
}

// Figures are a window's rates and latencies.
type Figures struct {
	AchievedSendRPS float64   `json:"achieved_send_rps"`
	DeliveredRPS    float64   `json:"delivered_rps"`
	PublishMS       Quantiles `json:"publish_ms"`
	E2EMS           Quantiles `json:"e2e_ms"`
	SendLagMS       Quantiles `json:"send_lag_ms"`
	ServiceMS       Quantiles `json:"service_ms"`
}

// figures computes w's figures over seconds. Callers hold r.mu.
func figures(w *window, seconds float64) Figures {
	return Figures{
		AchievedSendRPS: float64(w.Sent) / seconds, DeliveredRPS: float64(w.Delivered) / seconds,
		PublishMS: w.digests[Publish].Summary(), E2EMS: w.digests[E2E].Summary(),
		SendLagMS: w.digests[SendLag].Summary(), ServiceMS: w.digests[Service].Summary(),
	}
}

// Summary is summary.json. Paces and Totals cover the measure phase only;
// the warmup's figures are under Warmup.
type Summary struct {
	Schema         string        `json:"schema"`
	SustainedRPS   float64       `json:"sustained_rps"` // the highest held step below the lowest broken one
	Scenario       string        `json:"scenario"`
	PaceSet        string        `json:"pace_set"`
	Target         string        `json:"target"`
	Paces          []StepSummary `json:"paces"`
	Totals         PhaseSummary  `json:"totals"`
	Warmup         *WarmupPart   `json:"warmup,omitempty"`
	LateToTimeline int64         `json:"late_to_timeline"`      // records whose second's row was already written
	OutOfRange     int64         `json:"out_of_range"`          // receipts that matched no event sent
	AfterDrain     int64         `json:"delivered_after_drain"` // receipts after their load\'s drain; counted as lost
	Thresholds     []string      `json:"thresholds,omitempty"`  // as written in the scenario
	Breaches       []Breach      `json:"threshold_breaches,omitempty"`
}

// WarmupPart holds the warmup's figures, kept apart from the measured ones.
type WarmupPart struct {
	PhaseSummary
	Paces []StepSummary `json:"paces"`
}

// Summary computes the summary as it stands.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	s := Summary{Schema: "runner.summary/v1", Scenario: r.meta.Scenario, PaceSet: r.meta.PaceSet, Target: r.meta.Target, Paces: []StepSummary{}, LateToTimeline: r.late, OutOfRange: r.outOfRange, AfterDrain: r.afterDrain}
	var warmupSteps []StepSummary
	totals := map[string]*PhaseSummary{}
	for i, span := range r.spans {
		secs := span.Duration.Seconds()
		st := r.stepSummary(i)
		if span.Phase == "warmup" {
			warmupSteps = append(warmupSteps, st)
		} else {
			s.Paces = append(s.Paces, st)
		}
		t := totals[span.Phase]
		if t == nil {
			t = &PhaseSummary{}
			totals[span.Phase] = t
		}
		t.Seconds += secs
		t.Lost += st.Lost
		t.DeliveredUnacked += st.DeliveredUnacked
	}
	for phase, t := range totals {
		w := r.phases[phase]
		t.Counts = w.Counts
		t.Figures = figures(w, t.Seconds)
	}
	if t := totals["measure"]; t != nil {
		s.Totals = *t
	}
	s.SustainedRPS = sustained(s.Paces)
	s.Breaches = Evaluate(r.thresholds, s)
	for _, t := range r.thresholds {
		s.Thresholds = append(s.Thresholds, t.Text)
	}
	if t := totals["warmup"]; t != nil {
		s.Warmup = &WarmupPart{PhaseSummary: *t, Paces: warmupSteps}
	}
	return s
}

// StepSummary returns the figures of pace step i (as BeginStep numbered it).
func (r *Recorder) StepSummary(i int) StepSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	return r.stepSummary(i)
}

func (r *Recorder) stepSummary(i int) StepSummary {
	span, w := r.spans[i], r.steps[i]
	secs := span.Duration.Seconds()
	st := StepSummary{
		Phase: span.Phase, Index: span.Index, TargetRPS: span.TargetRPS, Seconds: secs,
		StartSecond: span.Start.Sub(r.origin).Seconds(),
		Counts:      w.Counts, StepExtra: r.extra[i], Figures: figures(w, secs),
	}
	if r.notRun[i] {
		st.Verdict, st.Reason = "not-run", "the load stopped before this step began"
		return st
	}
	st.Verdict, st.Reason = judge(st, r.thresholds)
	return st
}

// savedDigests is digests.json: every pace step's and phase's digests.
type savedDigests struct {
	Steps  []savedWindow          `json:"steps"`
	Phases map[string]savedWindow `json:"phases"`
}

type savedWindow struct {
	Span    *Span              `json:"span,omitempty"`
	Counts  Counts             `json:"counts"`
	Digests map[string]*Digest `json:"digests"`
}

func saveWindow(w *window, span *Span) savedWindow {
	sw := savedWindow{Span: span, Counts: w.Counts, Digests: map[string]*Digest{}}
	for m, d := range w.digests {
		sw.Digests[metricNames[m]] = d
	}
	return sw
}

// WriteSummary writes summary.json and digests.json atomically.
func (r *Recorder) WriteSummary() error {
	sum := r.Summary()
	if err := atomicfile.WriteJSON(filepath.Join(r.dir, SummaryFile), sum); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	r.mu.Lock()
	saved := savedDigests{Phases: map[string]savedWindow{}}
	for i := range r.spans {
		saved.Steps = append(saved.Steps, saveWindow(r.steps[i], &r.spans[i]))
	}
	for phase, w := range r.phases {
		saved.Phases[phase] = saveWindow(w, nil)
	}
	data, err := json.Marshal(saved)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("save digests: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(r.dir, DigestsFile), data); err != nil {
		return fmt.Errorf("save digests: %w", err)
	}
	return nil
}
