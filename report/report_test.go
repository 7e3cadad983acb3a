package report

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/perfrunner/runner/internal/golden"
	"github.com/perfrunner/runner/results"
)

// plan is one synthetic pace step: failed sends per second and lost events.
type plan struct {
	phase  string
	rps    int
	secs   int
	failed int
	lost   int64
}

// syntheticRun records a warmup and three measured pace steps with known
// outcomes, the last one broken by failures and losses, and closes the
// recorder.
func syntheticRun(t *testing.T) (string, results.Summary) {
	return recordPlans(t, []plan{{"warmup", 100, 2, 0, 0}, {"measure", 100, 3, 0, 0}, {"measure", 200, 3, 0, 0}, {"measure", 300, 3, 5, 40}})
}

func recordPlans(t *testing.T, plans []plan) (string, results.Summary) {
	t.Helper()
	dir := t.TempDir()
	rec, err := results.NewRecorder(dir, results.Meta{Scenario: "synthetic", PaceSet: "ramp", Target: "local"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var limits []results.Threshold
	for _, text := range []string{"e2e.p9999 < 50ms", "lost == 0 per step", "cpu_per_event_us < 300 per step"} {
		th, err := results.ParseThreshold(text)
		if err != nil {
			t.Fatal(err)
		}
		limits = append(limits, th)
	}
	rec.SetThresholds(limits)
	at := time.Unix(1_700_000_000, 0)
	origin := at
	for i, p := range plans {
		idx := rec.BeginStep(results.Span{Phase: p.phase, Index: i, TargetRPS: float64(p.rps), Start: at, Duration: time.Duration(p.secs) * time.Second})
		for s := 0; s < p.secs; s++ {
			for e := 0; e < p.rps; e++ {
				ti := at.Add(time.Duration(s)*time.Second + time.Duration(e)*time.Second/time.Duration(p.rps)).UnixNano()
				lat := int64(time.Millisecond) * int64(1+e%7+p.rps/100)
				rec.Intended(ti)
				ok := e >= p.failed
				rec.SendDone(ti, ti+50_000, ti+lat, ok)
				if ok && int64(e) >= p.lost/int64(p.secs) && p.lost >= 0 {
					rec.Delivered(ti, ti+lat+int64(time.Millisecond), false)
				}
			}
		}
		rec.SetStepExtra(idx, results.StepExtra{Lost: p.lost})
		at = at.Add(time.Duration(p.secs) * time.Second)
	}
	// Readings of a dispatcher spending 200 µs of CPU per event and 4 MiB
	// more at each step, and of an agent, every second (on the half second,
	// as a kubelet's timestamps fall).
	dispatcher := results.ContainerRef{Group: results.GroupSUT, Namespace: "knative-eventing", Pod: "imc-dispatcher-1", Container: "dispatcher", Node: "node-1"}
	agent := results.ContainerRef{Group: results.GroupAgents, Namespace: "perf", Pod: "perf-agents-0", Container: "agent", Node: "node-1"}
	var cpu float64
	second := 0
	for k, p := range plans {
		for s := 0; s < p.secs; s++ {
			when := origin.Add(time.Duration(second)*time.Second - 500*time.Millisecond)
			if err := rec.AddResources([]results.ResourceSample{
				{ContainerRef: dispatcher, At: when, CPUSeconds: cpu, MemoryBytes: float64((32 + 4*k) << 20)},
				{ContainerRef: agent, At: when, CPUSeconds: cpu / 4, MemoryBytes: 16 << 20},
			}); err != nil {
				t.Fatal(err)
			}
			cpu += 200e-6 * float64(p.rps)
			second++
		}
	}
	last := origin.Add(time.Duration(second)*time.Second + 500*time.Millisecond)
	if err := rec.AddResources([]results.ResourceSample{{ContainerRef: dispatcher, At: last, CPUSeconds: cpu, MemoryBytes: 48 << 20}, {ContainerRef: agent, At: last, CPUSeconds: cpu / 4, MemoryBytes: 16 << 20}}); err != nil {
		t.Fatal(err)
	}
	rec.SetResourceInfo(results.ResourceInfo{Source: "synthetic readings"})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	sum := rec.Summary()
	if err := WritePlots(dir, sum); err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

func TestSyntheticRunVerdicts(t *testing.T) {
	_, sum := syntheticRun(t)
	if len(sum.Paces) != 3 || sum.Warmup == nil || len(sum.Warmup.Paces) != 1 {
		t.Fatalf("paces %d, warmup %+v", len(sum.Paces), sum.Warmup)
	}
	for i, want := range []string{"held", "held", "broken"} {
		if sum.Paces[i].Verdict != want {
			t.Errorf("pace %d verdict %q (%s), want %s", i, sum.Paces[i].Verdict, sum.Paces[i].Reason, want)
		}
	}
	if sum.SustainedRPS != 200 {
		t.Errorf("sustained %g, want 200", sum.SustainedRPS)
	}
}

// TestPlotsRenderWithGnuplot renders every emitted script with the real
// gnuplot, in both formats; any output from gnuplot (an error or a warning)
// fails the test.
func TestPlotsRenderWithGnuplot(t *testing.T) {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		if os.Getenv("RUNNER_REQUIRE_GNUPLOT") != "" {
			t.Fatal("gnuplot is not installed, and RUNNER_REQUIRE_GNUPLOT is set")
		}
		t.Skip("gnuplot is not installed")
	}
	dir, _ := syntheticRun(t)
	for _, format := range []string{"png", "svg"} {
		made, err := Render(dir, format)
		if err != nil {
			t.Fatalf("render %s: %v", format, err)
		}
		if len(made) != len(plotScripts) {
			t.Errorf("rendered %v", made)
		}
		for _, name := range made {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if format == "png" && !bytes.HasPrefix(data, []byte("\x89PNG")) || format == "svg" && !bytes.Contains(data, []byte("<svg")) || len(data) < 5000 {
				t.Errorf("%s is not a %s image (%d bytes)", name, format, len(data))
			}
		}
	}
}

func TestGoldenStepsAndReport(t *testing.T) {
	dir, sum := syntheticRun(t)
	steps, err := os.ReadFile(filepath.Join(dir, StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "steps.tsv", steps)
	end := Ending{Code: 3, Meaning: "1 threshold breached"}
	if err := WriteReport(dir, Report{Summary: sum, Images: []string{"timeline.png", "steps.png"}, Context: testContext(), Ending: &end}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "closing.txt", []byte(strings.Join(Closing(&sum, end, "results/synthetic/ramp/20231114T221320Z-abcdef", nil), "\n")+"\n"))
	report, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	golden.Check(t, "report.md", report)
	timeline, _ := os.ReadFile(filepath.Join(dir, results.TimelineFile))
	golden.Check(t, "timeline.tsv", timeline)
	summary, _ := os.ReadFile(filepath.Join(dir, results.SummaryFile))
	golden.Check(t, "summary.json", summary)
}

// A step the generator alone broke shows as generator-saturated with its
// send lag, not with a reason that says the same again; a step the system
// under test broke as well is broken with every reason.
func TestClosingOfGeneratorSaturatedSteps(t *testing.T) {
	lag := results.Quantiles{P99: 5.914}
	sum := results.Summary{Paces: []results.StepSummary{
		{TargetRPS: 200, Verdict: "broken", GeneratorOnly: true, StepExtra: results.StepExtra{GeneratorSaturated: true}, Figures: results.Figures{SendLagMS: lag}, Reason: "generator saturated (send-lag p99 5.91 ms)"},
		{TargetRPS: 900, Verdict: "broken", StepExtra: results.StepExtra{GeneratorSaturated: true}, Figures: results.Figures{SendLagMS: lag}, Reason: "12 lost; generator saturated (send-lag p99 5.91 ms)"},
	}}
	got := strings.Join(Closing(&sum, Ending{}, "d", nil), "\n")
	for _, want := range []string{"\n  step 1 200/s  generator-saturated: send-lag p99 5.91 ms\n", "\n  step 2 900/s  broken: 12 lost; generator saturated (send-lag p99 5.91 ms)\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the closing block lacks %q:\n%s", want, got)
		}
	}
}

// testContext is a run's context with a fixed environment.
func testContext() *results.RunContext {
	return &results.RunContext{
		Command:     []string{"runner", "exec", "scenarios/synthetic.yaml", "--pace", "ramp", "--set", "payload=it's 8k", "--tag", "team=perf"},
		Sets:        []string{"payload=it's 8k"},
		ValuesFiles: []string{"values/large.yaml"},
		Tags:        map[string]string{"team": "perf", "ticket": "PERF-12"},
		Vars:        map[string]any{"payload": "it's 8k", "replicas": 3},
		Environment: results.Environment{Runner: "v0.9.0", Go: "go1.26.8", OS: "linux", Arch: "amd64", CPU: "AMD EPYC", CPUs: 2, Kernel: "6.18.44", Target: "local"},
	}
}

func TestWindowedRecomputesFromPerSecondDigests(t *testing.T) {
	dir, _ := syntheticRun(t)
	out := filepath.Join(dir, "skip-1s")
	sum, err := results.Windowed(dir, out, results.Window{From: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Paces) != 3 {
		t.Fatalf("paces: %+v", sum.Paces)
	}
	// The first measured second (100 events) is left out; the rest stays.
	if got := sum.Paces[0].Intended; got != 200 {
		t.Errorf("first step intended %d, want 200", got)
	}
	if got := sum.Totals.Intended; got != 200+600+900 {
		t.Errorf("total intended %d, want 1700", got)
	}
	if sum.Paces[0].Seconds != 2 || sum.Paces[0].StartSecond != 3 {
		t.Errorf("first step spans %g s from %g", sum.Paces[0].Seconds, sum.Paces[0].StartSecond)
	}
	if sum.Paces[2].Verdict != "broken" || sum.SustainedRPS != 200 {
		t.Errorf("verdicts: %+v, sustained %g", sum.Paces[2], sum.SustainedRPS)
	}
	// The window's graphs draw its own range of the measure phase's axis,
	// with real gnuplot and no warning.
	if err := WritePlots(out, sum); err != nil {
		t.Fatal(err)
	}
	if gp, _ := os.ReadFile(filepath.Join(out, "timeline.gp")); !bytes.Contains(gp, []byte("set xrange [1:9]")) {
		t.Errorf("the window's timeline is not drawn over [1:9]:\n%s", gp)
	}
	if _, err := exec.LookPath("gnuplot"); err == nil {
		if _, err := Render(out, "png"); err != nil {
			t.Error(err)
		}
	}
	// Only the kept seconds reach the window's timeline.
	timeline, _ := os.ReadFile(filepath.Join(out, results.TimelineFile))
	if rows := bytes.Count(timeline, []byte("\n")) - 1; rows != 8 {
		t.Errorf("windowed timeline has %d rows, want 8", rows)
	}
	if _, err := results.Windowed(dir, out, results.Window{From: 100}); err == nil {
		t.Error("a window past the end was accepted")
	}
}

// TestPlotsRenderEdgeCases renders runs that leave axes with nothing, or
// one point, on them.
func TestPlotsRenderEdgeCases(t *testing.T) {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		t.Skip("gnuplot is not installed")
	}
	for name, plans := range map[string][]plan{
		"every send fails":          {{"measure", 10, 2, 10, 0}},
		"one small step, no warmup": {{"measure", 10, 2, 0, 0}},
		"one second":                {{"measure", 5, 1, 0, 0}},
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := recordPlans(t, plans)
			if _, err := Render(dir, "png"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestComparisonRendersWithGnuplot renders the overlay of two runs'
// per-step latencies.
func TestComparisonRendersWithGnuplot(t *testing.T) {
	if _, err := exec.LookPath("gnuplot"); err != nil {
		return
	}
	_, sum := syntheticRun(t)
	c := results.Compare([]string{"a", "b"}, []results.Summary{sum, sum}, 0.1)
	dir := t.TempDir()
	if err := WriteComparison(dir, c, RunLabels([]string{"a", "b"}, []results.Summary{sum, sum}, [][]string{{"capacity=400"}, nil})); err != nil {
		t.Fatal(err)
	}
	if _, err := RenderScripts(dir, "png", "compare.gp"); err != nil {
		t.Fatal(err)
	}
	gp, _ := os.ReadFile(filepath.Join(dir, "compare.gp"))
	if n := strings.Count(string(gp), `title "a step broken in its run"`); n != 1 || strings.Count(string(gp), `column("r2_broken") > 0`) != 2 {
		t.Errorf("the broken step is not circled on both panels, with one key entry (%d):\n%s", n, gp)
	}
	tsv, _ := os.ReadFile(filepath.Join(dir, "compare.tsv"))
	rows := strings.Split(strings.TrimSpace(string(tsv)), "\n")
	if last := strings.Split(rows[len(rows)-1], "\t"); len(rows) != 4 || last[len(last)-1] != "1" || strings.Split(rows[1], "\t")[6] != "0" {
		t.Errorf("compare.tsv marks the wrong steps broken:\n%s", tsv)
	}
}

// TestComparisonOfHeldRunsCirclesNothing compares runs whose steps all
// held: no circle is drawn, and gnuplot says nothing of an empty series.
func TestComparisonOfHeldRunsCirclesNothing(t *testing.T) {
	_, sum := recordPlans(t, []plan{{"measure", 100, 2, 0, 0}, {"measure", 200, 2, 0, 0}})
	c := results.Compare([]string{"a", "b"}, []results.Summary{sum, sum}, 0.1)
	dir := t.TempDir()
	if err := WriteComparison(dir, c, nil); err != nil {
		t.Fatal(err)
	}
	if gp, _ := os.ReadFile(filepath.Join(dir, "compare.gp")); strings.Contains(string(gp), "broken") {
		t.Errorf("a circle drawn where nothing broke:\n%s", gp)
	}
	if _, err := exec.LookPath("gnuplot"); err == nil {
		if _, err := RenderScripts(dir, "png", "compare.gp"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStepLabelsNeverCollide lays out the labels of a long ramp cut by a
// window: a label is drawn only over a step wide enough for it, and never
// runs into the one before.
func TestStepLabelsNeverCollide(t *testing.T) {
	d := plotData{XMin: -60, XMax: 370}
	d.Steps = append(d.Steps, plotStep{Start: -60, End: 0, TargetRPS: 1000, Warmup: true})
	at := 0.0
	for i, secs := range []float64{0.4, 30, 30, 2, 2, 2, 30, 60, 30, 30, 30, 30, 30, 30, 30, 1.6} {
		d.Steps = append(d.Steps, plotStep{Start: at, End: at + secs, TargetRPS: float64(1000 + 100*i), Broken: i > 12})
		at += secs
	}
	d.labelSteps()
	pxPerSecond := timelineWidth * (plotRight - plotLeft) / (d.XMax - d.XMin)
	lastEnd, drawn := -1e9, 0
	for _, s := range d.Steps {
		if s.Label == "" {
			continue
		}
		drawn++
		width := labelCharPx * float64(utf8.RuneCountInString(s.Label))
		mid := (s.Start + s.End) / 2 * pxPerSecond
		if (s.End-s.Start)*pxPerSecond < width || mid-width/2 < lastEnd {
			t.Errorf("label %q does not fit over its step of %g s or runs into the one before", s.Label, s.End-s.Start)
		}
		lastEnd = mid + width/2
	}
	if drawn < 10 || d.Steps[1].Label != "" || d.Steps[4].Label != "" || d.Steps[0].Label != "warmup 1000/s" || d.Steps[14].Label != "2300/s ✗" {
		t.Errorf("%d labels drawn: %+v", drawn, d.Steps)
	}
}

// TestOneSecondSegmentIsDrawnAsPoints draws the lines of a segment of one
// second (a warmup of one second before the measure phase's gap), which
// holds a single point per metric, as points: a line through one point
// draws nothing.
func TestOneSecondSegmentIsDrawnAsPoints(t *testing.T) {
	d := plotData{Segments: []segment{{Lo: -3, Hi: -2}, {Lo: 0, Hi: 4}}}
	lines := strings.Split(d.Series("sec(0)", "column('sent')", "with lines linewidth 2", "send"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "== 1 ? column('sent') : NaN) with linespoints pointtype 7 pointsize 0.6 linewidth 2 title 'send'") ||
		!strings.Contains(lines[1], "== 2 ? column('sent') : NaN) with lines linewidth 2 notitle") {
		t.Errorf("the one-second segment as points, the other as lines:\n%s", strings.Join(lines, "\n"))
	}
}
