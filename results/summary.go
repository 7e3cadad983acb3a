package results

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"

	"github.com/perfrunner/runner/internal/atomicfile"
)

// StepSummary is one pace step's figures in summary.json.
type StepSummary struct {
	Phase       string  `json:"phase"`
	Index       int     `json:"index"`
	TargetRPS   float64 `json:"target_rps"`
	Seconds     float64 `json:"seconds"`
	StartSecond float64 `json:"start_second"` // on the timeline's axis
	Verdict     string  `json:"verdict"`      // held, broken, or not-run
	Reason      string  `json:"reason,omitempty"`
	// GeneratorOnly marks a broken step whose only reason is the load
	// generator's saturation: it says nothing of the system under test.
	GeneratorOnly bool `json:"generator_only,omitempty"`
	Counts
	StepExtra
	Figures
	Resources *Resources `json:"resources,omitempty"` // CPU and memory of the observed containers over the step
}

// PhaseSummary is a phase's totals in summary.json.
type PhaseSummary struct {
	Seconds float64 `json:"seconds"`
	Counts
	Lost             int64 `json:"lost"`
	DeliveredUnacked int64 `json:"delivered_unacknowledged"`
	Figures
	Resources *Resources `json:"resources,omitempty"` // over the phase's pace steps
}

// Figures are a bucket's rates and latencies.
type Figures struct {
	AchievedSendRPS float64   `json:"achieved_send_rps"`
	DeliveredRPS    float64   `json:"delivered_rps"`
	PublishMS       Quantiles `json:"publish_ms"`
	E2EMS           Quantiles `json:"e2e_ms,omitzero"` // absent when no event was delivered (a send-only load)
	SendLagMS       Quantiles `json:"send_lag_ms"`
	ServiceMS       Quantiles `json:"service_ms"`
}

// figures computes w's figures over seconds. Callers hold r.mu.
func figures(w *bucket, seconds float64) Figures {
	return Figures{
		AchievedSendRPS: float64(w.Sent) / seconds, DeliveredRPS: float64(w.Delivered) / seconds,
		PublishMS: w.digests[Publish].Summary(), E2EMS: w.digests[E2E].Summary(),
		SendLagMS: w.digests[SendLag].Summary(), ServiceMS: w.digests[Service].Summary(),
	}
}

// E2E returns statistic stat of the end-to-end latencies, NaN when none was
// measured: no event was delivered (a send-only load delivers none).
func (f Figures) E2E(stat func(Quantiles) float64) float64 {
	if f.E2EMS.Count == 0 {
		return math.NaN()
	}
	return stat(f.E2EMS)
}

// Statistics of Quantiles, for Figures.E2E.
var (
	P50   = func(q Quantiles) float64 { return q.P50 }
	P99   = func(q Quantiles) float64 { return q.P99 }
	P9999 = func(q Quantiles) float64 { return q.P9999 }
)

// FormatMS writes a latency in ms with three decimals, or "—" when it was
// not measured (NaN).
func FormatMS(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// Summary is summary.json. Paces and Totals cover the measure phase only;
// the warmup's figures are under Warmup.
type Summary struct {
	Schema         string           `json:"schema"`
	SustainedRPS   float64          `json:"sustained_rps"` // the highest held step below the lowest broken one
	Scenario       string           `json:"scenario"`
	PaceSet        string           `json:"pace_set"`
	Target         string           `json:"target"`
	Paces          []StepSummary    `json:"paces"`
	Totals         PhaseSummary     `json:"totals"`
	Warmup         *WarmupPart      `json:"warmup,omitempty"`
	LateToTimeline int64            `json:"late_to_timeline"`      // records whose second's row was already written
	OutOfRange     int64            `json:"out_of_range"`          // receipts that matched no event sent
	AfterDrain     int64            `json:"delivered_after_drain"` // receipts after their load\'s drain; counted as lost
	Thresholds     []string         `json:"thresholds,omitempty"`  // as written in the scenario
	Breaches       []Breach         `json:"threshold_breaches,omitempty"`
	Checks         []ThresholdCheck `json:"threshold_checks,omitempty"` // every threshold, held or not
	Recovered      *Recovery        `json:"recovered,omitempty"`        // rebuilt by runner cleanup after the run was killed
	Agents         []AgentPart      `json:"agents,omitempty"`           // the agents that sent loads, one entry per load and agent
	Resources      *ResourceInfo    `json:"resources,omitempty"`        // where the CPU and memory figures come from
	Window         *WindowPart      `json:"window,omitempty"`           // runner plot --skip or --window: the part of the measure phase kept
}

// MeasureStart is where the measure phase began on the timeline's axis:
// its first pace step's start, in a window the whole phase's; for a run
// that measured nothing, the end of its warmup.
func (sum Summary) MeasureStart() float64 {
	switch {
	case sum.Window != nil:
		return sum.Window.MeasureStart
	case len(sum.Paces) > 0:
		return sum.Paces[0].StartSecond
	case sum.Warmup != nil && len(sum.Warmup.Paces) > 0:
		last := sum.Warmup.Paces[len(sum.Warmup.Paces)-1]
		return last.StartSecond + last.Seconds
	}
	return 0
}

// AgentPart is one agent's part of a load: the agent's wall clock against
// the runner's, as measured before and after the load (its records are
// corrected by the first), and how its part ended.
type AgentPart struct {
	Load          string  `json:"load"`
	Agent         string  `json:"agent"`
	OffsetMS      float64 `json:"clock_offset_ms"`     // the agent's clock minus the runner's, before the load
	OffsetEndMS   float64 `json:"clock_offset_end_ms"` // the same after it; 0 when it could not be measured
	UncertaintyMS float64 `json:"clock_uncertainty_ms"`
	Error         string  `json:"error,omitempty"`   // why the part ended early
	Dropped       int64   `json:"dropped,omitempty"` // its events counted as dropped because it did
	Sends         int64   `json:"sends,omitempty"`   // a sender's sends
	SendLagP99MS  float64 `json:"send_lag_p99_ms,omitempty"`
	// FellBehind marks a sender whose send-lag p99 over its part exceeded
	// the load's maxSendLag: it could not hold its share of the pace.
	FellBehind bool `json:"fell_behind,omitempty"`
}

// Recovery says how the figures of a killed run were rebuilt from what it
// had written.
type Recovery struct {
	Seconds    int    `json:"seconds"`     // the seconds the figures come from
	LastSecond int64  `json:"last_second"` // the newest of them, on the timeline's axis
	Note       string `json:"note"`
}

// WarmupPart holds the warmup's figures, kept apart from the measured ones.
type WarmupPart struct {
	PhaseSummary
	Paces []StepSummary `json:"paces"`
}

// Tally is what Summarize reads: a run's pace steps and phases as
// measured, each with its counters and digests. The live run and a window
// recomputed from the per-second digests (Windowed) build one each.
type Tally struct {
	Meta       Meta
	Steps      []StepTally
	Phases     map[string]PhaseTally
	Thresholds []Threshold
	// LateToTimeline, OutOfRange, AfterDrain and Agents go to the summary
	// as they are.
	LateToTimeline, OutOfRange, AfterDrain int64
	Agents                                 []AgentPart
	// Resources are the observed containers' readings, on the timeline's
	// axis; ResourceInfo says where they come from.
	Resources    *ResourceSet
	ResourceInfo *ResourceInfo
}

// StepTally is one pace step as measured.
type StepTally struct {
	Phase       string
	Index       int
	TargetRPS   float64
	Seconds     float64 // the step's length, as judged
	StartSecond float64 // on the timeline's axis
	NotRun      bool    // the load stopped before the step began
	Extra       StepExtra
	b           *bucket
}

// PhaseTally is a phase's totals as measured.
type PhaseTally struct {
	Seconds float64
	b       *bucket
}

// SummarySchema names the version of summary.json.
const SummarySchema = "runner.summary/v1"

// Summarize computes a summary from t: every step's figures and verdict,
// the phases' totals, the sustained rate and the thresholds breached. It
// does no I/O and keeps nothing of t.
func Summarize(t Tally) Summary {
	s := Summary{Schema: SummarySchema, Scenario: t.Meta.Scenario, PaceSet: t.Meta.PaceSet, Target: t.Meta.Target, Paces: []StepSummary{}, LateToTimeline: t.LateToTimeline, OutOfRange: t.OutOfRange, AfterDrain: t.AfterDrain, Agents: t.Agents, Resources: t.ResourceInfo}
	var warmupSteps []StepSummary
	totals := map[string]*PhaseSummary{}
	stepResources := map[string][]*Resources{}
	events := map[string]int64{}
	for _, in := range t.Steps {
		st := summarizeStep(in, t.Thresholds, t.Resources)
		stepResources[in.Phase] = append(stepResources[in.Phase], st.Resources)
		events[in.Phase] += st.resourceEvents()
		if in.Phase == "warmup" {
			warmupSteps = append(warmupSteps, st)
		} else {
			s.Paces = append(s.Paces, st)
		}
		p := totals[in.Phase]
		if p == nil {
			p = &PhaseSummary{}
			totals[in.Phase] = p
		}
		p.Lost += st.Lost
		p.DeliveredUnacked += st.DeliveredUnacked
	}
	for phase, p := range totals {
		in := t.Phases[phase]
		p.Seconds = in.Seconds
		if in.b != nil {
			p.Counts = in.b.Counts
			p.Figures = figures(in.b, in.Seconds)
		}
		p.Resources = mergeResources(stepResources[phase], in.Seconds, events[phase])
	}
	if p := totals["measure"]; p != nil {
		s.Totals = *p
	}
	s.SustainedRPS = sustained(s.Paces)
	s.Breaches = Evaluate(t.Thresholds, s)
	if len(t.Thresholds) > 0 {
		s.Checks = Check(t.Thresholds, s)
	}
	for _, th := range t.Thresholds {
		s.Thresholds = append(s.Thresholds, th.Text)
	}
	if p := totals["warmup"]; p != nil {
		s.Warmup = &WarmupPart{PhaseSummary: *p, Paces: warmupSteps}
	}
	return s
}

// summarizeStep computes one step's figures and verdict.
func summarizeStep(in StepTally, limits []Threshold, res *ResourceSet) StepSummary {
	st := StepSummary{
		Phase: in.Phase, Index: in.Index, TargetRPS: in.TargetRPS, Seconds: in.Seconds,
		StartSecond: in.StartSecond, Counts: in.b.Counts, StepExtra: in.Extra, Figures: figures(in.b, in.Seconds),
	}
	if !in.NotRun {
		st.Resources = res.Over(in.StartSecond, in.StartSecond+in.Seconds, st.resourceEvents())
	}
	if in.NotRun {
		st.Verdict, st.Reason = "not-run", "the load stopped before this step began"
		return st
	}
	st.Verdict, st.Reason, st.GeneratorOnly = judge(st, limits)
	return st
}

// resourceEvents are the events CPU per event divides by: those
// delivered, or for a send-only step, those accepted.
func (st StepSummary) resourceEvents() int64 {
	if st.SendOnly {
		return st.Accepted
	}
	return st.Delivered
}

// Summary computes the summary as it stands.
func (r *Aggregator) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	t := Tally{Meta: r.meta, Phases: map[string]PhaseTally{}, Thresholds: r.thresholds, LateToTimeline: r.late, OutOfRange: r.outOfRange, AfterDrain: r.afterDrain, Agents: r.agents, Resources: r.res, ResourceInfo: r.resInfo}
	for i, span := range r.spans {
		t.Steps = append(t.Steps, r.stepTally(i))
		p := t.Phases[span.Phase]
		p.Seconds += span.Duration.Seconds()
		p.b = r.phases[span.Phase]
		t.Phases[span.Phase] = p
	}
	return Summarize(t)
}

// StepSummary returns the figures of pace step i (as BeginStep numbered it).
func (r *Aggregator) StepSummary(i int) StepSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	return summarizeStep(r.stepTally(i), r.thresholds, r.res)
}

// stepTally is step i as measured so far. Callers hold r.mu.
func (r *Aggregator) stepTally(i int) StepTally {
	span := r.spans[i]
	return StepTally{
		Phase: span.Phase, Index: span.Index, TargetRPS: span.TargetRPS, Seconds: span.Duration.Seconds(),
		StartSecond: span.Start.Sub(r.origin).Seconds(), NotRun: r.notRun[i], Extra: r.extra[i], b: r.steps[i],
	}
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

func saveBucket(w *bucket, span *Span) savedWindow {
	sw := savedWindow{Span: span, Counts: w.Counts, Digests: map[string]*Digest{}}
	for m, d := range w.digests {
		sw.Digests[metricNames[m]] = d
	}
	return sw
}

// Digests returns digests.json as it stands: every pace step's and phase's
// counters and digests, so that runs can be merged later.
func (r *Aggregator) Digests() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applyPending()
	saved := savedDigests{Phases: map[string]savedWindow{}}
	for i := range r.spans {
		saved.Steps = append(saved.Steps, saveBucket(r.steps[i], &r.spans[i]))
	}
	for phase, w := range r.phases {
		saved.Phases[phase] = saveBucket(w, nil)
	}
	return json.Marshal(saved)
}

// WriteSummary writes sum as summary.json and digests as digests.json into
// dir, each atomically.
func WriteSummary(dir string, sum Summary, digests []byte) error {
	if err := atomicfile.WriteJSON(filepath.Join(dir, SummaryFile), sum); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, DigestsFile), digests); err != nil {
		return fmt.Errorf("save digests: %w", err)
	}
	return nil
}
