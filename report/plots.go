package report

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

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
	data := plotData{Title: fmt.Sprintf("%s · %s · %s", sum.Scenario, sum.PaceSet, sum.Target), Sustained: sum.SustainedRPS}
	steps := append(warmupPaces(sum), sum.Paces...)
	pub, e2e := newRange(), newRange()
	for _, s := range steps {
		if f := s.Resources.Observed(); f != nil {
			data.StepsCPU = true
			data.PerEvent = data.PerEvent || f.CPUPerEventUS != nil
		}
		data.Steps = append(data.Steps, plotStep{Start: s.StartSecond, End: s.StartSecond + s.Seconds, TargetRPS: s.TargetRPS, Warmup: s.Phase == "warmup", Broken: s.Verdict == "broken"})
		data.XMax = max(data.XMax, s.StartSecond+s.Seconds)
		data.RateMax = max(data.RateMax, s.TargetRPS, s.AchievedSendRPS, s.DeliveredRPS)
		pub.add(s.PublishMS)
		e2e.add(s.E2EMS)
	}
	data.SendOnly = sendOnly(sum)
	data.Resources = resourcePanel(steps)
	data.RateMax = max(1, data.RateMax*1.15)
	data.Publish, data.E2E = pub.axis(), e2e.axis()
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
	b.WriteString("step\tphase\ttarget_rps\tachieved_send_rps\tdelivered_rps\tsend_failures\tdropped\tlost\tpublish_p50_ms\tpublish_p99_ms\tpublish_p9999_ms\te2e_p50_ms\te2e_p99_ms\te2e_p9999_ms\tbroken\tverdict\tcpu_cores\tcpu_per_event_us\tmemory_mib\n")
	for i, s := range append(warmupPaces(sum), sum.Paces...) {
		broken := 0
		if s.Verdict == "broken" {
			broken = 1
		}
		cores, perEvent, mem := "NaN", "NaN", "NaN"
		if f := s.Resources.Observed(); f != nil {
			cores, mem = fmt.Sprintf("%.3f", f.CPUCores), fmt.Sprintf("%.1f", f.MemoryMiB)
			if f.CPUPerEventUS != nil {
				perEvent = fmt.Sprintf("%.1f", *f.CPUPerEventUS)
			}
		}
		fmt.Fprintf(&b, "%d\t%s\t%g\t%.1f\t%.1f\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\t%s\t%s\n",
			i, s.Phase, s.TargetRPS, s.AchievedSendRPS, s.DeliveredRPS, s.SendFailures, s.Dropped, s.Lost,
			s.PublishMS.P50, s.PublishMS.P99, s.PublishMS.P9999, s.E2E(results.P50), s.E2E(results.P99), s.E2E(results.P9999), broken, s.Verdict,
			cores, perEvent, mem)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

type plotStep struct {
	Start, End float64 // seconds on the timeline's axis
	TargetRPS  float64
	Warmup     bool
	Broken     bool
}

type plotData struct {
	Title     string
	Sustained float64
	Steps     []plotStep
	XMax      float64 // the last step's end
	RateMax   float64 // top of the events/s axes
	Publish   axis
	E2E       axis
	SendOnly  bool // a load's sink did not deliver to the run: no deliveries to plot
	// Resources are the resource groups to plot, with their labels; none
	// when no reading was taken.
	Resources []resourceLine
	StepsCPU  bool // a step has figures of the observed systems (Resources.Observed)
	PerEvent  bool // a step has a CPU per event
}

// resourceLine is one resource group's lines on the CPU panel.
type resourceLine struct {
	Column string // the timeline's column prefix: sut, agents, runner
	Label  string
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
		{results.GroupSUT, "systems under test", "#8c564b"},
		{results.GroupRunner, "runner process (twins and load)", "#17becf"},
		{results.GroupAgents, "agents", "#7f7f7f"},
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
	"mid": func(s plotStep) float64 { return (s.Start + s.End) / 2 },
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
{{end}}{{if .Broken}}set object rect from {{.Start}}, graph 0 to {{.End}}, graph 1 fillcolor rgb "#fbe3e3" fillstyle solid 1.0 noborder behind
{{end}}{{end}}{{range .Boundaries}}set arrow from {{.}}, graph 0 to {{.}}, graph 1 nohead linecolor rgb "#999999" dashtype 2
{{end}}{{end}}

{{define "step-labels"}}{{range .Steps}}set label "{{if .Warmup}}warmup {{end}}{{.TargetRPS}}/s{{if .Broken}} ✗{{end}}" at {{mid .}}, graph 1.04 center font ",8" textcolor rgb "{{if .Broken}}#b00000{{else}}#444444{{end}}"
{{end}}{{end}}

{{define "timeline.gp"}}{{template "header" (args "timeline" 1400 .Height)}}
set multiplot layout {{.Panels}},1 title "{{.Title}}: per second of intended send time{{if .Sustained}} · sustained {{.Sustained}}/s{{end}}" margins 0.08,0.97,0.06,0.93 spacing 0,0.06
set grid
set key outside right top vertical font ",9"
set xlabel ""
{{if .XMax}}set xrange [0:{{.XMax}}]
{{end}}
{{template "steps-decor" .}}{{template "step-labels" .}}
set ylabel "publish latency (ms)"
set logscale y
set yrange [{{.Publish.Lo}}:{{.Publish.Hi}}]
{{if .Publish.Has}}plot "timeline.tsv" using (column("second")+0.5):(column("accepted") > 0 ? column("publish_p9999_ms") : NaN) with lines linewidth 1.5 linecolor rgb "#1f77b4" title "p99.99 (second)", \
     "" using (column("second")+0.5):(column("accepted") > 0 ? column("publish_cum_p9999_ms") : NaN) with lines dashtype 2 linecolor rgb "#1f77b4" title "p99.99 (cumulative)", \
     "" using (column("second")+0.5):(column("accepted") > 0 ? column("publish_p99_ms") : NaN) with lines linecolor rgb "#9ecae1" title "p99 (second)"
{{else}}{{template "empty" "no event was acknowledged"}}{{end}}unset label
set ylabel "end-to-end latency (ms)"
set yrange [{{.E2E.Lo}}:{{.E2E.Hi}}]
{{if .E2E.Has}}plot "timeline.tsv" using (column("second")+0.5):(column("delivered") > 0 ? column("e2e_p9999_ms") : NaN) with lines linewidth 1.5 linecolor rgb "#d62728" title "p99.99 (second)", \
     "" using (column("second")+0.5):(column("delivered") > 0 ? column("e2e_cum_p9999_ms") : NaN) with lines dashtype 2 linecolor rgb "#d62728" title "p99.99 (cumulative)", \
     "" using (column("second")+0.5):(column("delivered") > 0 ? column("e2e_p99_ms") : NaN) with lines linecolor rgb "#f4a6a6" title "p99 (second)"
{{else if .SendOnly}}{{template "empty" "end-to-end latency not measured: the load is send-only"}}{{else}}{{template "empty" "no event was delivered"}}{{end}}unset logscale y
set ylabel "events/s"
set yrange [0:{{.RateMax}}]
plot "timeline.tsv" using (column("second")):(column("target_rps")) with steps linecolor rgb "#888888" dashtype 3 title "target", \
     "" using (column("second")+0.5):(column("sent")) with lines linewidth 2 linecolor rgb "#1f77b4" title "sent"{{if not .SendOnly}}, \
     "" using (column("second")+0.5):(column("delivered")) with lines dashtype 2 linewidth 1.5 linecolor rgb "#2ca02c" title "delivered"{{end}}
set ylabel "failures/s"
{{if not .Resources}}set xlabel "seconds"
{{end}}
# An explicit range: a run with no failure at all would leave autoscaling an empty one.
stats "timeline.tsv" using (max(column("send_failures"), max(column("dropped"), {{if .SendOnly}}0{{else}}column("accepted")-column("delivered"){{end}}))) nooutput
set yrange [0:(STATS_max > 0 ? STATS_max * 1.15 : 1)]
set ytics auto
plot "timeline.tsv" using (column("second")+0.35):(column("send_failures")) with impulses linewidth 2 linecolor rgb "#ff7f0e" title "send failures", \
     "" using (column("second")+0.5):(column("dropped")) with impulses linewidth 2 linecolor rgb "#9467bd" title "dropped"{{if not .SendOnly}}, \
     "" using (column("second")+0.65):(column("accepted")-column("delivered")) with impulses linewidth 2 linecolor rgb "#d62728" title "undelivered"{{end}}
{{if .Resources}}set ylabel "CPU (cores)"
set xlabel "seconds"
set y2label "working set (MiB)"
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot {{range $i, $g := .Resources}}{{if $i}}, \
     {{end}}"timeline.tsv" using (column("second")+0.5):(column("{{$g.Column}}_cpu_cores")) with lines linewidth 1.5 linecolor rgb "{{$g.Color}}" title "CPU: {{$g.Label}}", \
     "" using (column("second")+0.5):(column("{{$g.Column}}_memory_mib")) axes x1y2 with lines dashtype 2 linecolor rgb "{{$g.Color}}" title "memory: {{$g.Label}}"{{end}}
{{end}}unset multiplot
{{end}}

{{define "points.gp"}}{{template "header" (args "points" 1400 700)}}
set tmargin 5
set title "{{.Title}}: sampled raw latencies (at most 100 per second and metric)" offset 0,1.5
set grid
set logscale y
set xlabel "seconds"
set ylabel "latency (ms)"
set key outside right top
{{if .XMax}}set xrange [0:{{.XMax}}]
{{end}}{{template "steps-decor" .}}{{template "step-labels" .}}
set yrange [{{lower .Publish .E2E}}:{{upper .Publish .E2E}}]
{{if and .Publish.Has .E2E.Has}}plot "samples.tsv" using (column("at_s")):(strcol("metric") eq "publish" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#1f77b4" title "publish", \
     "" using (column("at_s")):(strcol("metric") eq "e2e" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#d62728" title "end-to-end"
{{else if .Publish.Has}}plot "samples.tsv" using (column("at_s")):(strcol("metric") eq "publish" ? column("latency_ms") : NaN) with points pointtype 7 pointsize 0.3 linecolor rgb "#1f77b4" title "publish"
{{else}}{{template "empty" "no latency was measured"}}{{end}}
{{end}}

{{define "steps.gp"}}{{template "header" (args "steps" 1200 (stepsHeight .))}}
set multiplot layout {{if .StepsCPU}}3{{else}}2{{end}},1 title "{{.Title}}: per pace step{{if .Sustained}} · sustained {{.Sustained}}/s{{end}}"
# The same margins on every panel, whatever their keys and second axes.
set lmargin at screen 0.08
set rmargin at screen 0.76
set grid
set key outside right top
set xlabel "pace step (target events/s; ✗ broken)"
set xtics rotate by -30
set xrange [-0.5:{{.LastIndex}}.5]
set ylabel "events/s"
set yrange [0:{{.RateMax}}]
plot "steps.tsv" using (column("step")):(column("target_rps")):xtic(sprintf("%s%g%s", strcol("phase") eq "warmup" ? "w " : "", column("target_rps"), int(column("broken")) ? " ✗" : "")) with linespoints dashtype 3 linecolor rgb "#888888" title "target", \
     "" using (column("step")):(column("achieved_send_rps")) with linespoints pointtype 7 linecolor rgb "#1f77b4" title "sent"{{if not .SendOnly}}, \
     "" using (column("step")):(column("delivered_rps")) with linespoints pointtype 5 linecolor rgb "#2ca02c" title "delivered"{{end}}
set ylabel "latency (ms)"
set logscale y
{{if or .Publish.Has .E2E.Has}}set yrange [{{lower .Publish .E2E}}:{{upper .Publish .E2E}}]
plot "steps.tsv" using (column("step")):(column("publish_p99_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor rgb "#9ecae1" title "publish p99", \
     "" using (column("step")):(column("publish_p9999_ms")) with linespoints linecolor rgb "#1f77b4" title "publish p99.99", \
     "" using (column("step")):(column("e2e_p99_ms")) with linespoints linecolor rgb "#f4a6a6" title "end-to-end p99", \
     "" using (column("step")):(column("e2e_p9999_ms")) with linespoints linecolor rgb "#d62728" title "end-to-end p99.99"
{{else}}{{template "empty" "no latency was measured"}}{{end}}{{if .StepsCPU}}unset logscale y
set yrange [0:*]
set key inside left top
{{if .PerEvent}}set ylabel "CPU per event (µs): {{(index .Resources 0).Label}}"
set y2label "CPU (cores)"
set y2range [0:*]
set ytics nomirror
set y2tics
plot "steps.tsv" using (column("step")):(column("cpu_per_event_us")):xtic(sprintf("%g", column("target_rps"))) with linespoints pointtype 7 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU per event", \
     "" using (column("step")):(column("cpu_cores")) axes x1y2 with linespoints dashtype 2 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU cores"
{{else}}set ylabel "CPU (cores): {{(index .Resources 0).Label}}"
plot "steps.tsv" using (column("step")):(column("cpu_cores")):xtic(sprintf("%g", column("target_rps"))) with linespoints pointtype 7 linecolor rgb "{{(index .Resources 0).Color}}" title "CPU cores (no event was delivered: no CPU per event)"
{{end}}{{end}}unset multiplot
{{end}}
`))
