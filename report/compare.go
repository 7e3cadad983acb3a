package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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
		fmt.Fprintf(&b, "\tr%d_publish_p99_ms\tr%d_publish_p9999_ms\tr%d_e2e_p99_ms\tr%d_e2e_p9999_ms", r+1, r+1, r+1, r+1)
	}
	b.WriteString("\n")
	for _, s := range c.Steps {
		fmt.Fprintf(&b, "%d\t%g", s.Index, s.TargetRPS)
		for _, f := range s.Runs {
			if f == nil {
				b.WriteString("\tNaN\tNaN\tNaN\tNaN")
				continue
			}
			e2e := results.Figures{E2EMS: f.E2EMS}
			fmt.Fprintf(&b, "\t%.3f\t%.3f\t%.3f\t%.3f", f.PublishMS.P99, f.PublishMS.P9999, e2e.E2E(results.P99), e2e.E2E(results.P9999))
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
	// The key above both panels, a line per run; the panels share the rest.
	height := 800 + 18*len(runs)
	keyPx := 40.0 + 18*float64(len(runs))
	frac := func(px float64) float64 { return 1 - px/float64(height) }
	layout := map[string]any{
		"Runs": runs, "Last": len(c.Steps) - 1, "H": height, "Palette": Palette,
		"KeyY": frac(30), "Top1": frac(keyPx + 10), "Bottom1": frac(keyPx+10) - (frac(keyPx+10)-0.07)/2 + 0.05,
		"Top2": frac(keyPx+10) - (frac(keyPx+10)-0.07)/2 - 0.02, "Bottom2": 0.07,
	}
	if err := compareScript.Execute(&gp, layout); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "compare.gp"), gp.Bytes(), 0o600)
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
  if (fmt eq "svg") { set terminal svg size 1200,{{.H}} dynamic noenhanced background rgb "white" font "sans,11" } else { set terminal pngcairo size 1200,{{.H}} noenhanced font "sans,10" }
  set output "compare.".fmt
} else {
  set termoption noenhanced
}
set multiplot title "per-step latency, runs overlaid (solid p99.99, dashed p99)"
{{.Palette}}set grid
set logscale y
set lmargin at screen 0.08
set rmargin at screen 0.97
set key at screen 0.08, screen {{.KeyY}} left top Left reverse vertical font ",10"
set xrange [-0.5:{{.Last}}.5]
set xlabel "pace step (target events/s)"
set ylabel "publish latency (ms)"
set tmargin at screen {{.Top1}}
set bmargin at screen {{.Bottom1}}
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_publish_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_publish_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}
set ylabel "end-to-end latency (ms)"
set tmargin at screen {{.Top2}}
set bmargin at screen {{.Bottom2}}
unset key
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_e2e_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_e2e_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}
unset multiplot
`))
