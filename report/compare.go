package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/perfrunner/runner/results"
)

// WriteComparison writes compare.tsv and compare.gp into dir: the runs' per-step
// p99 and p99.99 end-to-end and publish latencies, overlaid, each run named
// by its label (RunLabels).
func WriteComparison(dir string, c results.Comparison, labels []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("step\ttarget_rps")
	for r := range c.Runs {
		fmt.Fprintf(&b, "\tr%d_publish_p99_ms\tr%d_publish_p9999_ms\tr%d_e2e_p99_ms\tr%d_e2e_p9999_ms\tr%d_broken", r+1, r+1, r+1, r+1, r+1)
	}
	b.WriteString("\n")
	brokenIn := make([]bool, len(c.Runs)) // the runs with a step broken
	for _, s := range c.Steps {
		fmt.Fprintf(&b, "%d\t%g", s.Index, s.TargetRPS)
		for r, f := range s.Runs {
			if f == nil {
				b.WriteString("\tNaN\tNaN\tNaN\tNaN\t0")
				continue
			}
			e2e := results.Figures{E2EMS: f.E2EMS}
			brokeHere := 0
			if f.StepVerdict == "broken" {
				brokeHere, brokenIn[r] = 1, true
			}
			fmt.Fprintf(&b, "\t%.3f\t%.3f\t%.3f\t%.3f\t%d", f.PublishMS.P99, f.PublishMS.P9999, e2e.E2E(results.P99), e2e.E2E(results.P9999), brokeHere)
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "compare.tsv"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	var gp bytes.Buffer
	runs := make([]string, len(c.Runs))
	for i, r := range c.Runs {
		runs[i] = filepath.Base(r)
		if i < len(labels) {
			runs[i] = strings.ReplaceAll(labels[i], `"`, `'`)
		}
	}
	keyLines := len(runs)
	if slices.Contains(brokenIn, true) {
		keyLines++
	}
	layout := map[string]any{"Runs": runs, "Last": len(c.Steps) - 1, "Palette": Palette, "L": NewKeyAbove(keyLines, 0.07, 0.05),
		"BrokenPublish": brokenCircles(brokenIn, "publish", true), "BrokenE2E": brokenCircles(brokenIn, "e2e", false)}
	if err := compareScript.Execute(&gp, layout); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "compare.gp"), gp.Bytes(), 0o600)
}

// brokenCircles are the plot elements that circle, on the panel of metric
// (publish or e2e), the p99.99 of every step broken in its run, one per run
// with such a step; keyed gives the first of them the key entry.
func brokenCircles(brokenIn []bool, metric string, keyed bool) string {
	var b strings.Builder
	for r, broken := range brokenIn {
		if !broken {
			continue
		}
		title := "notitle"
		if keyed {
			title, keyed = `title "a step broken in its run"`, false
		}
		fmt.Fprintf(&b, `, "" using (column("step")):(column("r%d_broken") > 0 ? column("r%d_%s_p9999_ms") : NaN) with points pointtype 6 pointsize 2.4 linewidth 1.5 linecolor rgb "#b00000" %s`, r+1, r+1, metric, title)
	}
	return b.String()
}

// KeyAbove lays out a graph of two panels under a key of one line per
// series: its height in pixels and, in fractions of the screen, the key's
// top and each panel's top and bottom.
type KeyAbove struct {
	Height                             int
	KeyY, Top1, Bottom1, Top2, Bottom2 float64
}

// NewKeyAbove lays out a key of lines lines above two panels that share
// the rest, down to bottom; the lower panel's top lies gap+0.02 below the
// upper one's bottom.
func NewKeyAbove(lines int, bottom, gap float64) KeyAbove {
	height := 800 + 18*lines
	frac := func(px float64) float64 { return 1 - px/float64(height) }
	top := frac(50 + 18*float64(lines))
	mid := (top + bottom) / 2
	return KeyAbove{Height: height, KeyY: frac(30), Top1: top, Bottom1: mid + gap, Top2: mid - 0.02, Bottom2: bottom}
}

// Palette is a gnuplot prelude that gives lines eight colours that stay
// apart on white, for graphs with a line per run or series.
const Palette = `set linetype 1 linecolor rgb "#1f77b4"
set linetype 2 linecolor rgb "#d62728"
set linetype 3 linecolor rgb "#2ca02c"
set linetype 4 linecolor rgb "#9467bd"
set linetype 5 linecolor rgb "#ff7f0e"
set linetype 6 linecolor rgb "#8c564b"
set linetype 7 linecolor rgb "#17becf"
set linetype 8 linecolor rgb "#7f7f7f"
set linetype cycle 8
`

// RunLabels names runs for a graph's key: scenario, pace set and the
// variables each set (sets[i], as --set gave them), with the run's id where
// that leaves two alike.
func RunLabels(dirs []string, sums []results.Summary, sets [][]string) []string {
	labels := make([]string, len(dirs))
	count := map[string]int{}
	for i := range dirs {
		label := sums[i].Scenario + " · " + sums[i].PaceSet
		if i < len(sets) && len(sets[i]) > 0 {
			label += " · " + strings.Join(sets[i], " ")
		}
		labels[i] = label
		count[label]++
	}
	for i, l := range labels {
		if count[l] > 1 {
			labels[i] = l + " · " + filepath.Base(dirs[i])
		}
	}
	return labels
}

var compareScript = template.Must(template.New("compare.gp").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`# Written by runner; gnuplot 5.4 or later.
# gnuplot -p compare.gp               opens a window
# gnuplot -e "fmt='png'" compare.gp   writes compare.png (or fmt='svg')
set datafile separator tab
set datafile columnheaders
if (exists("fmt")) {
  if (fmt eq "svg") { set terminal svg size 1200,{{.L.Height}} dynamic noenhanced background rgb "white" font "sans,11" } else { set terminal pngcairo size 1200,{{.L.Height}} noenhanced font "sans,10" }
  set output "compare.".fmt
} else {
  set termoption noenhanced
}
set multiplot title "per-step latency, runs overlaid (solid p99.99, dashed p99)"
{{.Palette}}set grid
set logscale y
set lmargin at screen 0.08
set rmargin at screen 0.97
set key at screen 0.08, screen {{.L.KeyY}} left top Left reverse vertical font ",10"
set xrange [-0.5:{{.Last}}.5]
set xlabel "pace step (target events/s)"
set ylabel "publish latency (ms)"
set tmargin at screen {{.L.Top1}}
set bmargin at screen {{.L.Bottom1}}
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_publish_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_publish_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}{{.BrokenPublish}}
set ylabel "end-to-end latency (ms)"
set tmargin at screen {{.L.Top2}}
set bmargin at screen {{.L.Bottom2}}
unset key
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_e2e_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_e2e_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}{{.BrokenE2E}}
unset multiplot
`))
