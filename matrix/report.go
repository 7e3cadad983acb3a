package matrix

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/perfrunner/runner/internal/atomicfile"
	"github.com/perfrunner/runner/report"
)

// Spread is a figure over a group's repetitions.
type Spread struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	CV     float64 `json:"cv"` // coefficient of variation: standard deviation / mean
}

func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var sum, sq float64
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(len(s))
	for _, x := range s {
		sq += (x - mean) * (x - mean)
	}
	cv := 0.0
	if mean != 0 && len(s) > 1 {
		cv = math.Sqrt(sq/float64(len(s)-1)) / mean
	}
	return Spread{N: len(s), Min: s[0], Median: med, Max: s[len(s)-1], CV: cv}
}

// noise is the range a figure moved over repetitions.
func (s Spread) noise() float64 { return s.Max - s.Min }

// Group is the cells of one scenario, pace set and values, over their
// repetitions.
type Group struct {
	Label     string  `json:"label"`
	PaceSet   string  `json:"pace_set"`
	Runs      int     `json:"runs"` // cells done
	Cells     int     `json:"cells"`
	Sustained Spread  `json:"sustained_rps"`
	At        float64 `json:"at_rps"`              // the pace step's rate the latencies are taken at
	E2E       Spread  `json:"e2e_p9999_ms_at"`     // at that rate
	Publish   Spread  `json:"publish_p9999_ms_at"` // at that rate
	CPU       Spread  `json:"cpu_per_event_us_at"` // at that rate, of the systems under test (the runner's process on local)
}

// Groups sums the index's done cells up per group. Latencies are compared
// at the pace step of rate ix.CompareAt; a pace set with no such step is
// compared at its lowest rate instead, and the group says which rate it
// used.
func Groups(ix *Index) []Group {
	var order []string
	type acc struct {
		g                      Group
		sus, e2e, publish, cpu []float64
	}
	accs := map[string]*acc{}
	for _, c := range ix.Cells {
		k := c.group()
		a := accs[k]
		if a == nil {
			a = &acc{g: Group{Label: c.label(), PaceSet: c.PaceSet}}
			accs[k] = a
			order = append(order, k)
		}
		a.g.Cells++
		if !c.done() {
			continue
		}
		a.g.Runs++
		a.sus = append(a.sus, c.SustainedRPS)
		if a.g.At == 0 {
			a.g.At = compareRate(c.Steps, ix.CompareAt)
		}
		for _, s := range c.Steps {
			if s.TargetRPS == a.g.At {
				a.e2e = append(a.e2e, value(s.E2EP9999MS))
				a.publish = append(a.publish, s.PublishP9999)
				if s.CPUPerEventUS != nil {
					a.cpu = append(a.cpu, *s.CPUPerEventUS)
				}
				break
			}
		}
	}
	var out []Group
	for _, k := range order {
		a := accs[k]
		a.g.Sustained, a.g.E2E, a.g.Publish, a.g.CPU = spread(a.sus), spread(a.e2e), spread(a.publish), spread(a.cpu)
		out = append(out, a.g)
	}
	return out
}

// compareRate is want when steps have it, else their lowest rate.
func compareRate(steps []StepFig, want float64) float64 {
	low := 0.0
	for _, s := range steps {
		if s.TargetRPS == want {
			return want
		}
		if low == 0 || s.TargetRPS < low {
			low = s.TargetRPS
		}
	}
	return low
}

// WriteSummary writes summary.md and the cross-cell graphs (rendered when
// gnuplot is installed).
func WriteSummary(dir string, ix *Index, say func(string, ...any)) error {
	groups := Groups(ix)
	var b strings.Builder
	fmt.Fprintf(&b, "# Matrix %s\n\n", ix.Name)
	done, failed := 0, 0
	for _, c := range ix.Cells {
		switch {
		case c.done():
			done++
		case c.Status == Failed || c.Status == Interrupted:
			failed++
		}
	}
	fmt.Fprintf(&b, "Target %s; %d cells, %d done, %d failed or interrupted", ix.Target, len(ix.Cells), done, failed)
	if ix.PaceOverride != "" {
		fmt.Fprintf(&b, "; every cell ran the pace %s instead of its set's", ix.PaceOverride)
	}
	b.WriteString(".\n\nSpread over repetitions: median [min – max], coefficient of variation. Latencies are p99.99 at the pace step of the rate given")
	if ix.CompareAt > 0 {
		fmt.Fprintf(&b, " (compareAt %g events/s; a pace set without that step is taken at its lowest rate)", ix.CompareAt)
	}
	b.WriteString(", as is CPU per event: the CPU time of the systems under test (on local, of the runner's process, in which the twins run) per event delivered.\n\n| system | pace set | runs | sustained events/s | at events/s | p99.99 end-to-end (ms) | p99.99 publish (ms) | CPU per event (µs) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, g := range groups {
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %g | %s | %s | %s |\n", g.Label, g.PaceSet, g.Runs, g.Cells, fmtSpread(g.Sustained, "%.0f"), g.At, fmtSpread(g.E2E, "%.2f"), fmtSpread(g.Publish, "%.2f"), fmtSpread(g.CPU, "%.1f"))
	}
	if cmp, once := comparisons(groups); cmp != "" || once > 0 {
		b.WriteString("\n## Differences against the noise\n\nTwo systems differ when their medians are further apart than the larger of their ranges over repetitions.\n\n")
		b.WriteString(cmp)
		if once > 0 {
			if cmp != "" {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "Systems that ran once each have no noise to judge a difference by (%d of the pairs): `repetitions: 2` or more compares them.\n", once)
		}
	}
	var bad []string
	for _, c := range ix.Cells {
		if c.Status == Failed || c.Status == Interrupted {
			bad = append(bad, fmt.Sprintf("- %s: %s (%s)", c.ID, c.Status, strings.SplitN(c.Error, "\n", 2)[0]))
		}
	}
	if len(bad) > 0 {
		b.WriteString("\n## Cells that did not finish\n\n" + strings.Join(bad, "\n") + "\n")
	}
	images, err := writeGraphs(dir, groups, say)
	if err != nil {
		return err
	}
	if len(images) > 0 {
		b.WriteString("\n## Graphs\n\n")
		for _, img := range images {
			fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(img, filepath.Ext(img)), img)
		}
	}
	return atomicfile.Write(filepath.Join(dir, SummaryFile), []byte(b.String()))
}

func fmtSpread(s Spread, f string) string {
	if s.N == 0 {
		return "–"
	}
	if s.N == 1 {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ["+f+" – "+f+"], CV %.1f%%", s.Median, s.Min, s.Max, 100*s.CV)
}

// comparisons says, per pace set, whether each pair of systems differs by
// more than its noise. Pairs of systems that ran once each have no noise
// to judge by: they are only counted.
func comparisons(groups []Group) (lines string, once int) {
	var b strings.Builder
	for i := range groups {
		for j := i + 1; j < len(groups); j++ {
			a, c := groups[i], groups[j]
			if a.PaceSet != c.PaceSet || a.Runs == 0 || c.Runs == 0 {
				continue
			}
			if a.Runs < 2 && c.Runs < 2 {
				once++
				continue
			}
			line := func(what string, x, y Spread, unit string) {
				if x.N == 0 || y.N == 0 {
					return
				}
				noise := math.Max(x.noise(), y.noise())
				diff := math.Abs(x.Median - y.Median)
				verdict := "within the noise"
				switch {
				case x.N < 2 && y.N < 2:
					verdict = "no repetitions to judge the noise"
				case diff > noise:
					verdict = "a real difference"
				}
				fmt.Fprintf(&b, "- %s, %s vs %s (%s): %s %.4g vs %.4g%s, difference %.4g, noise %.4g: %s\n", what, a.Label, c.Label, a.PaceSet, what, x.Median, y.Median, unit, diff, noise, verdict)
			}
			line("sustained", a.Sustained, c.Sustained, " events/s")
			line("p99.99 end-to-end", a.E2E, c.E2E, " ms")
			line("CPU per event", a.CPU, c.CPU, " µs")
		}
	}
	return b.String(), once
}

// writeGraphs writes matrix.tsv and the gnuplot scripts of the groups'
// sustained rates and p99.99 end-to-end latencies, with their spread as
// error bars, and renders them.
func writeGraphs(dir string, groups []Group, say func(string, ...any)) ([]string, error) {
	var tsv strings.Builder
	tsv.WriteString("label\tsustained_median\tsustained_min\tsustained_max\te2e_median_ms\te2e_min_ms\te2e_max_ms\tsystem\tpace\n")
	rows := 0
	for _, g := range groups {
		if g.Runs == 0 || g.E2E.N == 0 {
			continue
		}
		rows++
		clean := strings.NewReplacer("\t", " ", "\n", " ").Replace
		fmt.Fprintf(&tsv, "%s\t%g\t%g\t%g\t%g\t%g\t%g\t%s\t%s\n", clean(fmt.Sprintf("%s · %s @%g/s", g.Label, g.PaceSet, g.At)),
			g.Sustained.Median, g.Sustained.Min, g.Sustained.Max, g.E2E.Median, g.E2E.Min, g.E2E.Max,
			clean(g.Label), clean(fmt.Sprintf("%s @%g/s", g.PaceSet, g.At)))
	}
	if rows == 0 {
		return nil, nil
	}
	if err := atomicfile.Write(filepath.Join(dir, "matrix.tsv"), []byte(tsv.String())); err != nil {
		return nil, err
	}
	scripts := map[string]string{
		"sustained.gp": graph("sustained.gp", "sustained events/s per system (median, min–max over repetitions)", "events/s", 2, 3, 4),
		"e2e.gp":       graph("e2e.gp", "p99.99 end-to-end latency at the compared step (median, min–max)", "ms", 5, 6, 7),
	}
	for name, text := range scripts {
		if err := atomicfile.Write(filepath.Join(dir, name), []byte(text)); err != nil {
			return nil, err
		}
	}
	images, err := report.RenderScripts(dir, "png", "sustained.gp", "e2e.gp")
	if errors.Is(err, report.ErrNoGnuplot) {
		return nil, nil
	}
	if err != nil && say != nil {
		say("graphs: %v", err) // the scripts and data are kept
	}
	return images, nil
}

// graph is a gnuplot script drawing boxes at a median column with min–max
// error bars, one box per row of matrix.tsv.
func graph(name, title, ylabel string, med, lo, hi int) string {
	return fmt.Sprintf(`# Rendered by the runner; rerun with: gnuplot -e "fmt='svg'" `+name+`
if (!exists("fmt")) fmt = "png"
if (fmt eq "svg") { set terminal svg size 1100,600 dynamic font "sans,11" } else { set terminal pngcairo size 1100,600 font "sans,10" }
base = ARG0[1:strlen(ARG0)-3]
set output base.".".fmt
set datafile separator "\t"
set datafile columnheaders
set title %q
set ylabel %q
set style fill solid 0.5 border -1
set boxwidth 0.6
# Room above the tallest error bar.
stats "matrix.tsv" using %d nooutput
set yrange [0:(STATS_max > 0 ? STATS_max * 1.15 : 1)]
# Each box named on two lines: the system and its values, then the pace
# set and the compared step.
set xtics noenhanced font ",9"
set rmargin 4
set bmargin 5
set grid ytics
set key off
plot "matrix.tsv" using 0:%d:xtic(strcol("system")."\n".strcol("pace")) with boxes lc rgb "#4477aa", \
     "" using 0:%d:%d:%d with yerrorbars lc rgb "black" pt 0
`, title, ylabel, hi, med, med, lo, hi)
}
