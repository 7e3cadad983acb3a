package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/atomicfile"
	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
)

// Past is one finished run found under a results directory.
type Past struct {
	Dir          string
	Scenario     string
	PaceSet      string
	Target       string
	Start        time.Time
	Status       string
	SustainedRPS float64
	E2EP9999MS   float64 // over the measure phase; NaN when no event was delivered (a send-only run)
	Vars         string  // the run's variables, canonical JSON
	Label        string  // scenario · pace set · target, and the variables that tell its runs apart
	Matrix       string  // the matrix run directory the run is a cell of, or ""
}

// key groups runs that measure the same thing: same scenario, pace set,
// target and variables.
func (p Past) key() string {
	return p.Scenario + " · " + p.PaceSet + " · " + p.Target + " · " + p.Vars
}

// History finds every run under root (matrix cells included) whose
// measurement finished, oldest first.
func History(root string) ([]Past, error) {
	var out []Past
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != engine.RunFile {
			return nil
		}
		dir := filepath.Dir(path)
		rec, err := engine.ReadRunRecord(dir)
		if err != nil {
			return nil // not a run directory of ours
		}
		sum, err := results.ReadSummary(dir)
		if err != nil || len(sum.Paces) == 0 {
			return nil // nothing measured
		}
		switch rec.Status {
		case "succeeded", "failed", "thresholds-breached":
		default:
			return nil // interrupted or still running: not comparable
		}
		vars, _ := json.Marshal(rec.Vars) // map keys sorted: canonical
		out = append(out, Past{Dir: dir, Scenario: rec.Scenario, PaceSet: rec.PaceSet, Target: rec.Target, Start: rec.Start,
			Status: rec.Status, SustainedRPS: sum.SustainedRPS, E2EP9999MS: sum.Totals.E2E(results.P9999), Vars: string(vars), Matrix: matrixOf(dir)})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	label(out)
	return out, err
}

// label names each run's group: scenario · pace set · target, plus the
// variables whose values differ between runs of that scenario.
func label(runs []Past) {
	values := map[string]map[string]map[string]bool{} // scenario → var → values seen
	parsed := make([]map[string]any, len(runs))
	for i, r := range runs {
		_ = json.Unmarshal([]byte(r.Vars), &parsed[i])
		if values[r.Scenario] == nil {
			values[r.Scenario] = map[string]map[string]bool{}
		}
		for k, v := range parsed[i] {
			if values[r.Scenario][k] == nil {
				values[r.Scenario][k] = map[string]bool{}
			}
			values[r.Scenario][k][fmt.Sprint(v)] = true
		}
	}
	for i := range runs {
		r := &runs[i]
		r.Label = r.Scenario + " · " + r.PaceSet + " · " + r.Target
		for _, k := range sortedKeys(values[r.Scenario]) {
			if len(values[r.Scenario][k]) > 1 {
				r.Label += fmt.Sprintf(" · %s=%v", k, parsed[i][k])
			}
		}
	}
}

// matrixOf returns the matrix run directory a run directory is a cell of
// (…/matrix/<name>/<id>/runs/…), or "".
func matrixOf(dir string) string {
	parts := strings.Split(filepath.ToSlash(dir), "/")
	for i := len(parts) - 1; i >= 3; i-- {
		if parts[i] == RunsDir && parts[i-3] == "matrix" {
			return strings.Join(parts[:i], "/")
		}
	}
	return ""
}

// WriteHistory writes the runs per scenario and pace set as a table to w's
// file history.md in dir, and trend graphs of sustained rate and p99.99
// end-to-end latency over time.
func WriteHistory(dir string, runs []Past) (string, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var keys []string
	byKey := map[string][]Past{}
	labels := map[string]string{}
	for _, r := range runs {
		if _, ok := byKey[r.key()]; !ok {
			keys = append(keys, r.key())
			labels[r.key()] = r.Label
		}
		byKey[r.key()] = append(byKey[r.key()], r)
	}
	sort.Slice(keys, func(i, j int) bool { return labels[keys[i]] < labels[keys[j]] })
	// One block per scenario and pace set, blocks apart by two blank
	// lines, as gnuplot's index reads them.
	var tsv strings.Builder
	for i, k := range keys {
		if i > 0 {
			tsv.WriteString("\n\n")
		}
		fmt.Fprintf(&tsv, "# %s\n# time\tsustained_rps\te2e_p9999_ms\n", labels[k])
		fmt.Fprintf(&b, "## %s\n\n", labels[k])
		if vars := varsLine(byKey[k][0].Vars); vars != "" {
			b.WriteString("Variables: " + vars + ".\n\n")
		}
		b.WriteString("| start (UTC) | status | sustained events/s | p99.99 end-to-end (ms) | run |\n| --- | --- | --- | --- | --- |\n")
		for _, r := range byKey[k] {
			fmt.Fprintf(&b, "| %s | %s | %g | %s | %s |\n", r.Start.UTC().Format("2006-01-02 15:04:05"), r.Status, r.SustainedRPS, results.FormatMS(r.E2EP9999MS), r.Dir)
			fmt.Fprintf(&tsv, "%d\t%g\t%g\n", r.Start.Unix(), r.SustainedRPS, r.E2EP9999MS)
		}
		b.WriteString("\n")
	}
	if err := atomicfile.Write(filepath.Join(dir, "history.md"), []byte(b.String())); err != nil {
		return "", nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "history.tsv"), []byte(tsv.String())); err != nil {
		return "", nil, err
	}
	var plots []string
	for i, k := range keys {
		plots = append(plots, fmt.Sprintf(`"history.tsv" index %d using 1:%%d with linespoints title %q`, i, labels[k]))
	}
	// An explicit time range, so that one run (or runs in one second)
	// still makes a graph, and about six time tics whatever the span.
	first, last := runs[0].Start.Unix(), runs[len(runs)-1].Start.Unix()
	span := last - first
	pad := max(span/20, 30)
	if span == 0 {
		pad = 3600
	}
	tic := int64(86400)
	for _, nice := range []int64{60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400} {
		if (span+2*pad)/nice <= 8 {
			tic = nice
			break
		}
	}
	if (span+2*pad)/tic > 8 {
		tic = (span + 2*pad) / 8 / 86400 * 86400
	}
	timeFormat := "%H:%M"
	if span+2*pad > 86400 {
		timeFormat = `%m-%d\n%H:%M`
	}
	// Latencies a decade apart or more (a broken series beside held ones)
	// share the panel on a log scale, where each keeps its shape.
	latencyAxis := ""
	lo, hi := math.Inf(1), 0.0
	for _, r := range runs {
		if v := r.E2EP9999MS; v > 0 && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi > 10*lo {
		bottom, top := lo/1.5, hi*2
		var tics []string // 1, 2, 5 in every decade, to read values between them
		for decade := math.Pow(10, math.Floor(math.Log10(bottom))); decade <= top; decade *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if v := m * decade; v >= bottom && v <= top {
					tics = append(tics, fmt.Sprintf("%g", v))
				}
			}
		}
		latencyAxis = fmt.Sprintf("set logscale y\nset yrange [%.4g:%.4g]\nset ytics (%s)\n", bottom, top, strings.Join(tics, ", "))
	}
	// The key above both panels, a line per series; the panels below.
	l := report.NewKeyAbove(len(keys), 0.08, 0.04)
	script := fmt.Sprintf(`# Rendered by the runner; rerun with: gnuplot -e "fmt='svg'" trend.gp
if (!exists("fmt")) fmt = "png"
if (fmt eq "svg") { set terminal svg size 1100,%d dynamic font "sans,11" } else { set terminal pngcairo size 1100,%d font "sans,10" }
set output "trend.".fmt
set datafile separator "\t"
set xdata time
set timefmt "%%s"
set xrange ["%d":"%d"]
set xtics %d
set format x "%s"
%sset grid
# Room above the highest point.
set offsets 0, 0, graph 0.1, 0
set multiplot title "history: per scenario and pace set (UTC)"
set lmargin at screen 0.08
set rmargin at screen 0.97
set key at screen 0.08, screen %g left top Left reverse vertical noenhanced
set ylabel "sustained events/s"
set yrange [0:*]
set tmargin at screen %g
set bmargin at screen %g
plot %s
unset key
set ylabel "p99.99 end-to-end (ms)"
%sset tmargin at screen %g
set bmargin at screen 0.08
plot %s
unset multiplot
`, l.Height, l.Height, first-pad, last+pad, tic, timeFormat, report.Palette, l.KeyY, l.Top1, l.Bottom1, sprintfAll(plots, 2), latencyAxis, l.Top2, sprintfAll(plots, 3))
	if err := atomicfile.Write(filepath.Join(dir, "trend.gp"), []byte(script)); err != nil {
		return "", nil, err
	}
	images, err := report.RenderScripts(dir, "png", "trend.gp")
	if errors.Is(err, report.ErrNoGnuplot) {
		err = nil
	}
	return b.String(), images, err
}

func sprintfAll(plots []string, col int) string {
	out := make([]string, len(plots))
	for i, p := range plots {
		out[i] = fmt.Sprintf(p, col)
	}
	return strings.Join(out, ", \\\n     ")
}

// Regression is a run worse than its baseline beyond the tolerance.
type Regression struct {
	Run      Past
	Figure   string
	Baseline float64
	Got      float64
}

func (r Regression) String() string {
	return fmt.Sprintf("%s: %s %.4g against a baseline of %.4g (%+.1f%%) in %s", r.Run.Label, r.Figure, r.Got, r.Baseline, 100*(r.Got-r.Baseline)/r.Baseline, r.Run.Dir)
}

// Check compares the newest run of each scenario and pace set with its
// baseline: the median of the previous n runs, or pinned when set (a run
// directory; only runs of its scenario and pace set are compared). A run
// regresses when its sustained rate fell, or its p99.99 end-to-end latency
// rose, by more than tolerance (0.1 for 10 %). It also returns what it
// compared, for people.
func Check(runs []Past, n int, pinned string, tolerance float64) ([]Regression, []string) {
	byKey := map[string][]Past{}
	var keys []string
	var pin *Past
	for i, r := range runs {
		if _, ok := byKey[r.key()]; !ok {
			keys = append(keys, r.key())
		}
		byKey[r.key()] = append(byKey[r.key()], r)
		if pinned != "" && sameDir(r.Dir, pinned) {
			pin = &runs[i]
		}
	}
	sort.Strings(keys)
	var regs []Regression
	var notes []string
	for _, k := range keys {
		rs := byKey[k]
		newest := rs[len(rs)-1]
		var baseSus, baseE2E float64
		switch {
		case pinned != "":
			if pin == nil || pin.key() != k {
				notes = append(notes, fmt.Sprintf("%s: not checked (the pinned run measures something else)", newest.Label))
				continue
			}
			if sameDir(newest.Dir, pin.Dir) {
				notes = append(notes, fmt.Sprintf("%s: not checked (the pinned run is the newest)", newest.Label))
				continue
			}
			baseSus, baseE2E = pin.SustainedRPS, pin.E2EP9999MS
		default:
			// The baseline is earlier runs: not the newest's sibling
			// repetitions in the same matrix, which share its build.
			var prev []Past
			for _, p := range rs[:len(rs)-1] {
				if newest.Matrix == "" || p.Matrix != newest.Matrix {
					prev = append(prev, p)
				}
			}
			if len(prev) == 0 {
				notes = append(notes, fmt.Sprintf("%s: no earlier run to compare with", newest.Label))
				continue
			}
			if len(prev) > n {
				prev = prev[len(prev)-n:]
			}
			var sus, e2e []float64
			for _, p := range prev {
				sus = append(sus, p.SustainedRPS)
				if !math.IsNaN(p.E2EP9999MS) { // a send-only run has none
					e2e = append(e2e, p.E2EP9999MS)
				}
			}
			baseSus, baseE2E = spread(sus).Median, math.NaN()
			if len(e2e) > 0 {
				baseE2E = spread(e2e).Median
			}
		}
		notes = append(notes, fmt.Sprintf("%s: newest sustained %g, p99.99 e2e %s ms; baseline %g, %s ms", newest.Label, newest.SustainedRPS, results.FormatMS(newest.E2EP9999MS), baseSus, results.FormatMS(baseE2E)))
		if baseSus > 0 && newest.SustainedRPS < baseSus*(1-tolerance) {
			regs = append(regs, Regression{Run: newest, Figure: "sustained events/s", Baseline: baseSus, Got: newest.SustainedRPS})
		}
		if baseE2E > 0 && newest.E2EP9999MS > baseE2E*(1+tolerance) && !math.IsNaN(newest.E2EP9999MS) {
			regs = append(regs, Regression{Run: newest, Figure: "p99.99 end-to-end ms", Baseline: baseE2E, Got: newest.E2EP9999MS})
		}
	}
	return regs, notes
}

// Find returns the run of runs in dir, if any.
func Find(runs []Past, dir string) (Past, bool) {
	for _, r := range runs {
		if sameDir(r.Dir, dir) {
			return r, true
		}
	}
	return Past{}, false
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// varsLine lists a run's variables (JSON, as Past holds them) as
// `name=value`, by name; "" when it has none.
func varsLine(vars string) string {
	var m map[string]any
	if json.Unmarshal([]byte(vars), &m) != nil || len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("`%s=%v`", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
