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
// p99 and p99.99 end-to-end and publish latencies, overlaid.
func WriteComparison(dir string, c results.Comparison) error {
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
	}
	if err := compareScript.Execute(&gp, map[string]any{"Runs": runs, "Last": len(c.Steps) - 1}); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "compare.gp"), gp.Bytes(), 0o600)
}

var compareScript = template.Must(template.New("compare.gp").Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).Parse(`# Written by runner; gnuplot 5.4 or later.
# gnuplot -p compare.gp               opens a window
# gnuplot -e "fmt='png'" compare.gp   writes compare.png (or fmt='svg')
set datafile separator tab
set datafile columnheaders
if (exists("fmt")) {
  if (fmt eq "svg") { set terminal svg size 1200,800 dynamic noenhanced background rgb "white" font "sans,11" } else { set terminal pngcairo size 1200,800 noenhanced font "sans,10" }
  set output "compare.".fmt
} else {
  set termoption noenhanced
}
set multiplot layout 2,1 title "per-step latency, runs overlaid (solid p99.99, dashed p99)"
set grid
set logscale y
set key outside right top
set xrange [-0.5:{{.Last}}.5]
set xlabel "pace step (target events/s)"
set ylabel "publish latency (ms)"
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_publish_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_publish_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}
set ylabel "end-to-end latency (ms)"
plot {{range $i, $r := .Runs}}{{if $i}}, {{end}}"compare.tsv" using (column("step")):(column("r{{inc $i}}_e2e_p9999_ms")):xtic(sprintf("%g", column("target_rps"))) with linespoints linecolor {{inc $i}} title "{{$r}}", "" using (column("step")):(column("r{{inc $i}}_e2e_p99_ms")) with lines dashtype 2 linecolor {{inc $i}} notitle{{end}}
unset multiplot
`))
