package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/perfrunner/runner/results"
)

// Plot scripts a run directory holds. Each reads the TSV files beside it by
// column name; run alone with `gnuplot -p NAME.gp` it opens a window, and
// with `gnuplot -e "fmt='png'" NAME.gp` (or 'svg') it writes NAME.png.
var plotScripts = []string{"timeline.gp", "points.gp", "steps.gp"}

// StepsFile is the per-step table the steps graph reads.
const StepsFile = "steps.tsv"

// WritePlots writes the per-step table and the gnuplot scripts for sum into
// dir, beside the timeline and samples the recorder wrote.
func WritePlots(dir string, sum results.Summary) error {
	if err := writeStepsTSV(filepath.Join(dir, StepsFile), sum); err != nil {
		return err
	}
	data := plotData{Title: fmt.Sprintf("%s · %s · %s", sum.Scenario, sum.PaceSet, sum.Target), Sustained: sum.SustainedRPS, Origin: sum.MeasureStart()}
	steps := append(warmupPaces(sum), sum.Paces...)
	pub, e2e, lag := newRange(), newRange(), newRange()
	data.XMin, data.XMax = math.Inf(1), math.Inf(-1)
	for _, s := range steps {
		if f := s.Resources.Observed(); f != nil {
			data.StepsCPU = true
			data.PerEvent = data.PerEvent || f.CPUPerEventUS != nil
		}
		warm, verdict := s.Phase == "warmup", StepVerdict(s)
		if warm {
			data.WarmupSteps++
		}
		ps := plotStep{
			Start: s.StartSecond - data.Origin, End: s.StartSecond + s.Seconds - data.Origin, TargetRPS: s.TargetRPS, Warmup: warm,
			Broken: !warm && verdict == "broken", Saturated: !warm && verdict == "generator-saturated",
		}
		data.Steps = append(data.Steps, ps)
		data.XMin, data.XMax = math.Min(data.XMin, ps.Start), math.Max(data.XMax, ps.End)
		data.RateMax = max(data.RateMax, s.TargetRPS, s.AchievedSendRPS, s.DeliveredRPS)
		pub.add(s.PublishMS)
		e2e.add(s.E2EMS)
		lag.add(s.SendLagMS)
	}
	if len(steps) == 0 {
		data.XMin, data.XMax = 0, 1
	}
	data.labelSteps()
	data.Segments = segments(data.Steps)
	data.SendOnly = sendOnly(sum)
	data.Resources = resourcePanel(steps)
	data.RateMax = max(1, data.RateMax*1.15)
	data.Publish, data.E2E, data.Lag = pub.axis(), e2e.axis(), lag.axis()
	for _, name := range plotScripts {
		var buf bytes.Buffer
		if err := scripts.ExecuteTemplate(&buf, name, data); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// NothingToDraw says why a run has nothing a graph could show, or "" when
// it has: no pace step was measured, or none sent an event.
func NothingToDraw(sum results.Summary) string {
	if measuredNothing(&sum) {
		return "the run measured no pace step"
	}
	for _, s := range append(warmupPaces(sum), sum.Paces...) {
		if s.Intended > 0 {
			return ""
		}
	}
	return "the run sent no event"
}

// The timeline's plot area, in pixels, and the width of a step label's
// character at its font: a label wider than its step is not drawn.
const (
	timelineWidth = 1400
	plotLeft      = 0.07
	plotRight     = 0.80
	labelCharPx   = 6.5
)

// labelSteps gives each step its label over the timeline ("warmup 1000/s",
// "1200/s ✗"), dropping those that would not fit over their step or would
// run into the last label drawn.
func (d *plotData) labelSteps() {
	span := d.XMax - d.XMin
	if span <= 0 {
		return
	}
	pxPerSecond := timelineWidth * (plotRight - plotLeft) / span
	lastEnd := math.Inf(-1) // where the last label drawn ends, in px
	for i := range d.Steps {
		s := &d.Steps[i]
		label := fmt.Sprintf("%g/s", s.TargetRPS)
		switch {
		case s.Warmup:
			label = "warmup " + label
		case s.Broken:
			label += " ✗"
		case s.Saturated:
			label += " (generator)"
		}
		width := labelCharPx * float64(utf8.RuneCountInString(label))
		mid := (s.Start + s.End) / 2 * pxPerSecond
		if (s.End-s.Start)*pxPerSecond < width+4 || mid-width/2 < lastEnd+6 {
			continue
		}
		s.Label, lastEnd = label, mid+width/2
	}
}

// segments returns the contiguous parts of the timeline, where lines are
// drawn: a line breaks where no step was (between warmup and measure,
// between loads).
func segments(steps []plotStep) []segment {
	sorted := slices.Clone(steps)
	slices.SortFunc(sorted, func(a, b plotStep) int { return cmp.Compare(a.Start, b.Start) })
	var out []segment
	for _, s := range sorted {
		if n := len(out); n > 0 && s.Start <= out[n-1].Hi+0.5 {
			out[n-1].Hi = math.Max(out[n-1].Hi, s.End)
			continue
		}
		out = append(out, segment{Lo: s.Start, Hi: s.End})
	}
	return out
}

func warmupPaces(sum results.Summary) []results.StepSummary {
	if sum.Warmup == nil {
		return nil
	}
	return sum.Warmup.Paces
}

// GnuplotLog is where Render keeps what gnuplot printed about the graphs
// it could not draw.
const GnuplotLog = "gnuplot.log"

// ErrNoGnuplot means gnuplot is not on PATH: the scripts are kept, nothing
// is rendered.
var ErrNoGnuplot = errors.New("gnuplot is not installed: the plot scripts are kept unrendered (render them later with runner plot)")

// Render runs gnuplot on every script in dir, writing format ("png" or
// "svg") files. Anything gnuplot prints is an error: a warning means a graph
// that is not what the script meant. The error names each script with
// gnuplot's first line about it; all it printed goes to GnuplotLog in dir.
func Render(dir, format string) ([]string, error) {
	return RenderScripts(dir, format, plotScripts...)
}

// RenderScripts runs gnuplot on the named scripts in dir, as Render does.
func RenderScripts(dir, format string, names ...string) ([]string, error) {
	gnuplot, err := exec.LookPath("gnuplot")
	if err != nil {
		return nil, ErrNoGnuplot
	}
	var made []string
	var errs []error
	var log bytes.Buffer
	for _, name := range names {
		cmd := exec.Command(gnuplot, "-e", fmt.Sprintf("fmt='%s'", format), name)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if out = bytes.TrimSpace(out); err != nil || len(out) > 0 {
			first, _, _ := bytes.Cut(out, []byte("\n"))
			if len(first) == 0 {
				first = []byte(err.Error())
			}
			errs = append(errs, fmt.Errorf("gnuplot %s: %s", name, first))
			fmt.Fprintf(&log, "gnuplot %s (%v):\n%s\n\n", name, err, out)
			continue
		}
		graph := strings.TrimSuffix(name, ".gp") + "." + format
		// gnuplot creates it under the umask; run files are the owner's only.
		if err := os.Chmod(filepath.Join(dir, graph), 0o600); err != nil {
			errs = append(errs, err)
			continue
		}
		made = append(made, graph)
	}
	if log.Len() > 0 {
		if err := os.WriteFile(filepath.Join(dir, GnuplotLog), log.Bytes(), 0o600); err != nil {
			errs = append(errs, err)
		}
	}
	return made, errors.Join(errs...)
}

// writeStepsTSV writes one row per pace step, warmup first.
func writeStepsTSV(path string, sum results.Summary) error {
	var b strings.Builder
	b.WriteString("step\tphase\ttarget_rps\tachieved_send_rps\tdelivered_rps\tsend_failures\tdropped\tlost\tpublish_p50_ms\tpublish_p99_ms\tpublish_p9999_ms\te2e_p50_ms\te2e_p99_ms\te2e_p9999_ms\tbroken\tverdict\tcpu_cores\tcpu_per_event_us\tmemory_mib\tgenerator_saturated\n")
	for i, s := range append(warmupPaces(sum), sum.Paces...) {
		broken := 0
		if s.Verdict == "broken" {
			broken = 1
		}
		saturated := 0
		if StepVerdict(s) == "generator-saturated" {
			saturated = 1
		}
		cores, perEvent, mem := "NaN", "NaN", "NaN"
		if f := s.Resources.Observed(); f != nil {
			cores, mem = fmt.Sprintf("%.3f", f.CPUCores), fmt.Sprintf("%.1f", f.MemoryMiB)
			if f.CPUPerEventUS != nil {
				perEvent = fmt.Sprintf("%.1f", *f.CPUPerEventUS)
			}
		}
		fmt.Fprintf(&b, "%d\t%s\t%g\t%.1f\t%.1f\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\t%s\t%s\t%d\n",
			i, s.Phase, s.TargetRPS, s.AchievedSendRPS, s.DeliveredRPS, s.SendFailures, s.Dropped, s.Lost,
			s.PublishMS.P50, s.PublishMS.P99, s.PublishMS.P9999, s.E2E(results.P50), s.E2E(results.P99), s.E2E(results.P9999), broken, s.Verdict,
			cores, perEvent, mem, saturated)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

type plotStep struct {
	Start, End float64 // seconds from the start of the measure phase
	TargetRPS  float64
	Warmup     bool
	Broken     bool   // a measured step that broke (not only for the generator)
	Saturated  bool   // a measured step the load generator could not keep up with
	Label      string // over the timeline; empty when it would not fit
}

// segment is a contiguous part of the timeline, in seconds of the measure
// phase.
type segment struct{ Lo, Hi float64 }

type plotData struct {
	Title     string
	Sustained float64
	Steps     []plotStep
	Segments  []segment
	Origin    float64 // the measure phase's start on the timeline's axis: x = 0
	XMin      float64 // the first step's start
	XMax      float64 // the last step's end
	// WarmupSteps is how many of steps.tsv's rows are the warmup's; a
	// warmup lies at x < 0.
	WarmupSteps int
	RateMax     float64 // top of the events/s axes
	Publish     axis
	E2E         axis
	Lag         axis
	SendOnly    bool // a load's sink did not deliver to the run: no deliveries to plot
	// Resources are the resource groups to plot, with their labels; none
	// when no reading was taken.
	Resources []resourceLine
	StepsCPU  bool // a step has figures of the observed systems (Resources.Observed)
	PerEvent  bool // a step has a CPU per event
}

// Segment is the gnuplot function that numbers the segment a second of
// the timeline lies in, from 1; 0 outside every one.
func (d plotData) Segment() string {
	var b strings.Builder
	b.WriteString("seg(x) = ")
	for k, g := range d.Segments {
		fmt.Fprintf(&b, "(x >= %g && x <= %g) ? %d : ", g.Lo, g.Hi, k+1)
	}
	b.WriteString("0")
	return b.String()
}

// Series draws a line of the timeline once per segment, so that it breaks
// between them: y is a gnuplot expression of the row, style its style,
// title its key entry (given once). A segment of one second holds one
// point, which a line does not draw: its lines are drawn as points.
func (d plotData) Series(x, y, style, title string) string {
	parts := make([]string, 0, len(d.Segments))
	for k, g := range d.Segments {
		key := "notitle"
		if k == 0 {
			key = "title '" + title + "'"
		}
		drawn := style
		if g.Hi-g.Lo <= 1 {
			drawn = strings.Replace(style, "with lines", "with linespoints pointtype 7 pointsize 0.6", 1)
		}
		parts = append(parts, fmt.Sprintf("\"timeline.tsv\" using (%s):(seg(%s) == %d ? %s : NaN) %s %s", x, x, k+1, y, drawn, key))
	}
	return strings.Join(parts, ", \\\n     ")
}

// resourceLine is one resource group's lines on the CPU panel.
type resourceLine struct {
	Column string // the timeline's column prefix: sut, agents, runner
	Label  string
	Short  string // in the timeline's key
	Color  string
}

// resourcePanel returns the groups the steps have figures of, the one the
// steps graph and thresholds judge (Resources.Observed) first.
func resourcePanel(steps []results.StepSummary) []resourceLine {
	var out []resourceLine
	has := map[string]bool{}
	for _, s := range steps {
		if s.Resources != nil {
			for _, g := range s.Resources.Groups {
				has[g.Group] = true
			}
		}
	}
	for _, l := range []resourceLine{
		{results.GroupSUT, "systems under test", "SUT", "#8c564b"},
		{results.GroupRunner, "runner process (twins and load)", "runner", "#17becf"},
		{results.GroupAgents, "agents", "agents", "#7f7f7f"},
	} {
		if has[l.Column] {
			out = append(out, l)
		}
	}
	return out
}

// Panels is the number of panels of the timeline graph.
func (d plotData) Panels() int {
	if len(d.Resources) > 0 {
		return 5
	}
	return 4
}

// Height is the timeline graph's height in pixels.
func (d plotData) Height() int { return 275 * d.Panels() }

// axis is a logarithmic latency axis fixed from the summary's exact minimum
// and maximum, so that no autoscaling meets an empty or one-point range.
// Has is false when no latency of the kind was measured.
type axis struct {
	Has    bool
	Lo, Hi float64
}

type latencyRange struct {
	lo, hi float64
	n      int64
}

func newRange() *latencyRange { return &latencyRange{lo: math.Inf(1), hi: math.Inf(-1)} }

func (r *latencyRange) add(q results.Quantiles) {
	if q.Count == 0 {
		return
	}
	r.n += q.Count
	r.lo = math.Min(r.lo, q.Min)
	r.hi = math.Max(r.hi, q.Max)
}

func (r *latencyRange) axis() axis {
	if r.n == 0 {
		return axis{Lo: 0.1, Hi: 10}
	}
	lo := math.Max(r.lo/2, 0.001)
	return axis{Has: true, Lo: lo, Hi: math.Max(r.hi*2, lo*10)}
}

// LastIndex is the index of the last row of steps.tsv.
func (d plotData) LastIndex() int { return len(d.Steps) - 1 }

// Boundaries returns every instant a pace step starts or ends, once each.
func (d plotData) Boundaries() []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, s := range d.Steps {
		for _, x := range []float64{s.Start, s.End} {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	sort.Float64s(out)
	return out
}

var scripts = template.Must(template.New("").Funcs(template.FuncMap{
	"mid":       func(s plotStep) float64 { return (s.Start + s.End) / 2 },
	"plotLeft":  func() float64 { return plotLeft },
	"plotRight": func() float64 { return plotRight },
	"stepsHeight": func(d plotData) int {
		if d.StepsCPU {
			return 1300
		}
		return 900
	},
	"lower": func(a, b axis) float64 { return math.Min(a.Lo, b.Lo) },
	"upper": func(a, b axis) float64 { return math.Max(a.Hi, b.Hi) },
	"args": func(name string, width, height int) map[string]any {
		return map[string]any{"Name": name, "W": width, "H": height}
	},
}).Parse(`
{{define "header"}}# Written by runner; gnuplot 5.4 or later.
# gnuplot -p {{.Name}}.gp               opens a window
# gnuplot -e "fmt='png'" {{.Name}}.gp   writes {{.Name}}.png (or fmt='svg')
set datafile separator tab
set datafile columnheaders
max(a, b) = (a > b) ? a : b
if (exists("fmt")) {
  if (fmt eq "svg") { set terminal svg size {{.W}},{{.H}} dynamic noenhanced background rgb "white" font "sans,11" } else { set terminal pngcairo size {{.W}},{{.H}} noenhanced font "sans,10" }
  set output "{{.Name}}.".fmt
} else {
  set termoption noenhanced
}
{{end}}

{{define "empty"}}set label "{{.}}" at graph 0.5, graph 0.5 center
plot 1 notitle linecolor rgb "white"
{{end}}

{{define "steps-decor"}}{{range .Steps}}{{if .Warmup}}set object rect from {{.Start}}, graph 0 to {{.End}}, graph 1 fillcolor rgb "#ececec" fillstyle solid 1.0 noborder behind
{{else if .Broken}}set object rect from {{.Start}}, graph 0 to {{.End}}, graph 1 fillcolor rgb "#fbe3e3" fillstyle solid 1.0 noborder behind
{{else if .Saturated}}set object rect from {{.Start}}, graph 0 to {{.End}}, graph 1 fillcolor rgb "#fdf0c8" fillstyle solid 1.0 noborder behind
{{end}}{{end}}{{range .Boundaries}}set arrow from {{.}}, graph 0 to {{.}}, graph 1 nohead linecolor rgb "#999999" dashtype 2
{{end}}{{end}}

{{define "step-labels"}}{{range .Steps}}{{if .Label}}set label "{{.Label}}" at {{mid .}}, graph 1.06 center font ",8" textcolor rgb "{{if .Broken}}#b00000{{else if .Saturated}}#9a6700{{else}}#444444{{end}}"
{{end}}{{end}}{{end}}

{{define "timeline.gp"}}{{template "header" (args "timeline" 1400 .Height)}}
set multiplot layout {{.Panels}},1 title "{{.Title}}: the six metrics per second of intended send time{{if .Sustained}} · sustained {{.Sustained}}/s{{end}}" margins {{plotLeft}},{{plotRight}},0.05,0.93 spacing 0,0.055
set grid
# Keys right of the plots, clear of a second axis's tics.
set key at screen 0.995, graph 1 right top vertical font ",9"
set xlabel ""
set xrange [{{.XMin}}:{{.XMax}}]
at(d) = column("second") - {{.Origin}}
sec(d) = at(d) + 0.5
{{.Segment}}
{{template "steps-decor" .}}{{template "step-labels" .}}
set ylabel "p99.99 latency (ms)"
set logscale y
set yrange [{{lower .Publish .E2E}}:{{upper .Publish .E2E}}]
{{if or .Publish.Has .E2E.Has}}plot {{.Series "sec(0)" "(column('accepted') > 0 ? column('publish_p9999_ms') : NaN)" "with lines linewidth 1.5 linecolor rgb '#1f77b4'" "publish p99.99"}}, \
     {{.Series "sec(0)" "(column('accepted') > 0 ? column('publish_cum_p9999_ms') : NaN)" "with lines dashtype 2 linecolor rgb '#1f77b4'" "publish p99.99 (cumulative)"}}{{if .E2E.Has}}, \
     {{.Series "sec(0)" "(column('delivered') > 0 ? column('e2e_p9999_ms') : NaN)" "with lines linewidth 1.5 linecolor rgb '#d62728'" "end-to-end p99.99"}}, \
     {{.Series "sec(0)" "(column('delivered') > 0 ? column('e2e_cum_p9999_ms') : NaN)" "with lines dashtype 2 linecolor rgb '#d62728'" "end-to-end p99.99 (cumulative)"}}{{end}}
{{else}}{{template "empty" "no event was acknowledged"}}{{end}}unset label
unset logscale y
set ylabel "throughput (events/s)"
set yrange [0:{{.RateMax}}]
plot {{.Series "at(0)" "column('target_rps')" "with steps linecolor rgb '#888888' dashtype 3" "target"}}, \
     {{.Series "sec(0)" "column('sent')" "with lines linewidth 2 linecolor rgb '#1f77b4'" "send"}}{{if not .SendOnly}}, \
     {{.Series "sec(0)" "column('delivered')" "with lines dashtype 2 linewidth 1.5 linecolor rgb '#2ca02c'" "delivery"}}{{end}}
set ylabel "failures (events/s)"
# An explicit range: a run with no failure at all would leave autoscaling an empty one.
stats "timeline.tsv" using (max(column("send_failures"), max(column("dropped"), {{if .SendOnly}}0{{else}}column("accepted")-column("delivered"){{end}}))) nooutput
set yrange [0:(STATS_max > 0 ? STATS_max * 1.15 : 1)]
plot "timeline.tsv" using (sec(0)-0.15):(column("send_failures")) with impulses linewidth 2 linecolor rgb "#ff7f0e" title "send failures", \
     "" using (sec(0)):(column("dropped")) with impulses linewidth 2 linecolor rgb "#9467bd" title "dropped (never sent)"{{if not .SendOnly}}, \
     "" using (sec(0)+0.15):(column("accepted")-column("delivered")) with impulses linewidth 2 linecolor rgb "#d62728" title "delivery failures (undelivered)"{{end}}
set ylabel "send lag (ms)"
{{if not .Resources}}set xlabel "seconds from the start of the measure phase{{if .WarmupSteps}} (warmup before 0){{end}}"
{{end}}set logscale y
set yrange [{{.Lag.Lo}}:{{.Lag.Hi}}]
{{if .Lag.Has}}plot {{.Series "sec(0)" "column('send_lag_p99_ms')" "with lines linewidth 1.5 linecolor rgb '#555555'" "send lag p99"}}, \
     {{.Series "sec(0)" "column('send_lag_max_ms')" "with lines dashtype 2 linecolor rgb '#555555'" "send lag max"}}
{{else}}{{template "empty" "no event was sent"}}{{end}}unset logscale y
{{if .Resources}}set ylabel "CPU (cores)"
set xlabel "seconds from the start of the measure phase{{if .WarmupSteps}} (warmup before 0){{end}}"
set y2label "working set (MiB)"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot {{range $i, $g := .Resources}}{{if $i}}, \
     {{end}}{{$.Series "sec(0)" (printf "column('%s_cpu_cores')" $g.Column) (printf "with lines linewidth 1.5 linecolor rgb '%s'" $g.Color) (printf "CPU: %s" $g.Short)}}, \
     {{$.Series "sec(0)" (printf "column('%s_memory_mib')" $g.Column) (printf "axes x1y2 with lines dashtype 2 linecolor rgb '%s'" $g.Color) (printf "memory: %s" $g.Short)}}{{end}}
{{end}}unset multiplot
{{end}}

{{define "points.gp"}}{{template "header" (args "points" 1400 700)}}
set lmargin at screen {{plotLeft}}
set rmargin at screen {{plotRight}}
set title "{{.Title}}: sampled raw latencies (at most 100 per second and metric)" offset 0,2.5
set tmargin 6
set grid
set logscale y
set xlabel "seconds from the start of the measure phase{{if .WarmupSteps}} (warmup before 0){{end}}"
set ylabel "latency (ms)"
set key outside right top
set xrange [{{.XMin}}:{{.XMax}}]
{{template "steps-decor" .}}{{template "step-labels" .}}
set yrange [{{lower .Publish .E2E}}:{{upper .Publish .E2E}}]
{{if and .Publish.Has .E2E.Has}}plot "samples.tsv" using (column("at_s") - {{.Origin}}):(strcol("metric") eq "publish" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#1f77b4" title "publish", \
     "" using (column("at_s") - {{.Origin}}):(strcol("metric") eq "e2e" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#d62728" title "end-to-end"
{{else if .Publish.Has}}plot "samples.tsv" using (column("at_s") - {{.Origin}}):(strcol("metric") eq "publish" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#1f77b4" title "publish"
{{else}}{{template "empty" "no latency was measured"}}{{end}}
{{end}}

{{define "steps.gp"}}{{template "header" (args "steps" 1200 (stepsHeight .))}}
set multiplot layout {{if .StepsCPU}}3{{else}}2{{end}},1 title "{{.Title}}: per pace step{{if .Sustained}} · sustained {{.Sustained}}/s{{end}}"
# The same margins and x axis on every panel, whatever their keys and
# second axes; the warmup's steps (grey, apart) are not joined to the
# measured ones.
set lmargin at screen 0.08
set rmargin at screen 0.76
set grid
set key at screen 0.995, graph 1 right top
set xtics rotate by -30
set xrange [-0.5:{{.LastIndex}}.5]
tic(d) = sprintf("%s%g%s", strcol("phase") eq "warmup" ? "warmup " : "", column("target_rps"), int(column("generator_saturated")) ? " (generator)" : int(column("broken")) ? " ✗" : "")
m(y) = strcol("phase") eq "measure" ? y : NaN
w(y) = strcol("phase") eq "warmup" ? y : NaN
{{if .WarmupSteps}}set arrow from {{.WarmupSteps}}-0.5, graph 0 to {{.WarmupSteps}}-0.5, graph 1 nohead linecolor rgb "#999999" dashtype 2
{{end}}set xlabel "pace step (target events/s; ✗ broken; (generator) the load generator could not keep the pace)"
set ylabel "events/s"
set yrange [0:{{.RateMax}}]
plot "steps.tsv" using (column("step")):(m(column("target_rps"))):xtic(tic(0)) with linespoints dashtype 3 linecolor rgb "#888888" title "target", \
     "" using (column("step")):(m(column("achieved_send_rps"))) with linespoints pointtype 7 linecolor rgb "#1f77b4" title "sent"{{if not .SendOnly}}, \
     "" using (column("step")):(m(column("delivered_rps"))) with linespoints pointtype 5 linecolor rgb "#2ca02c" title "delivered"{{end}}{{if .WarmupSteps}}, \
     "" using (column("step")):(w(column("achieved_send_rps"))) with points pointtype 6 linecolor rgb "#999999" title "warmup"{{end}}
set ylabel "latency (ms)"
set logscale y
{{if or .Publish.Has .E2E.Has}}set yrange [{{lower .Publish .E2E}}:{{upper .Publish .E2E}}]
plot "steps.tsv" using (column("step")):(m(column("publish_p99_ms"))):xtic(tic(0)) with linespoints linecolor rgb "#9ecae1" title "publish p99", \
     "" using (column("step")):(m(column("publish_p9999_ms"))) with linespoints linecolor rgb "#1f77b4" title "publish p99.99"{{if .E2E.Has}}, \
     "" using (column("step")):(m(column("e2e_p99_ms"))) with linespoints linecolor rgb "#f4a6a6" title "end-to-end p99", \
     "" using (column("step")):(m(column("e2e_p9999_ms"))) with linespoints linecolor rgb "#d62728" title "end-to-end p99.99"{{end}}{{if .WarmupSteps}}, \
     "" using (column("step")):(w(column("publish_p9999_ms"))) with points pointtype 6 linecolor rgb "#999999" title "warmup p99.99"{{end}}
{{else}}{{template "empty" "no latency was measured"}}{{end}}{{if .StepsCPU}}unset logscale y
set yrange [0:*]
{{if .PerEvent}}set ylabel "CPU per event (µs): {{(index .Resources 0).Label}}"
set y2label "CPU (cores)"
set y2range [0:*]
set ytics nomirror
set y2tics
plot "steps.tsv" using (column("step")):(m(column("cpu_per_event_us"))):xtic(tic(0)) with linespoints pointtype 7 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU per event", \
     "" using (column("step")):(m(column("cpu_cores"))) axes x1y2 with linespoints dashtype 2 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU cores"{{if .WarmupSteps}}, \
     "" using (column("step")):(w(column("cpu_per_event_us"))) with points pointtype 6 linecolor rgb "#999999" title "warmup"{{end}}
{{else}}set ylabel "CPU (cores): {{(index .Resources 0).Label}}"
plot "steps.tsv" using (column("step")):(m(column("cpu_cores"))):xtic(tic(0)) with linespoints pointtype 7 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU cores (no event was delivered: no CPU per event)"{{if .WarmupSteps}}, \
     "" using (column("step")):(w(column("cpu_cores"))) with points pointtype 6 linecolor rgb "#999999" title "warmup"{{end}}
{{end}}{{end}}unset multiplot
{{end}}
`))
