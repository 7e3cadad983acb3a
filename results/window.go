package results

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/perfrunner/runner/internal/atomicfile"
)

// ReadSummary reads a run directory's summary.json.
func ReadSummary(dir string) (Summary, error) {
	var s Summary
	data, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return s, fmt.Errorf("read summary: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read summary %s: %w", filepath.Join(dir, SummaryFile), err)
	}
	return s, nil
}

// Window is a range of seconds of the measure phase, counted from its
// first pace step's start: [From, To). To ≤ 0 means to the end.
type Window struct {
	From, To float64
}

// WindowPart says, in a windowed summary, which part of the measure phase
// it covers, and where that phase began on the timeline's axis.
type WindowPart struct {
	From         float64 `json:"from_s"`
	To           float64 `json:"to_s,omitempty"` // 0: to the end
	MeasureStart float64 `json:"measure_start_second"`
}

func (w Window) holds(s float64) bool { return s >= w.From && (w.To <= 0 || s < w.To) }

// Label names the window for a directory: "skip-10s" or "window-30s-90s".
func (w Window) Label() string {
	if w.To <= 0 {
		return fmt.Sprintf("skip-%gs", w.From)
	}
	return fmt.Sprintf("window-%gs-%gs", w.From, w.To)
}

// Windowed recomputes a stored run's measured figures over a window of the
// measure phase only, from its per-second digests, and writes the result
// (summary, timeline, samples) into out; report.WritePlots draws it. Counts and percentiles cover the
// seconds kept; a pace step's lost events are its undelivered ones in those
// seconds. The warmup is left out.
func Windowed(dir, out string, w Window) (Summary, error) {
	orig, err := ReadSummary(dir)
	if err != nil {
		return Summary{}, err
	}
	if len(orig.Paces) == 0 {
		return Summary{}, errors.New("the run measured no pace step")
	}
	measureStart := orig.Paces[0].StartSecond
	steps := make([]*bucket, len(orig.Paces))
	kept := make([]float64, len(orig.Paces))
	for i := range steps {
		steps[i] = newBucket()
	}
	total := newBucket()
	keptSeconds := map[int64]bool{}

	lines, err := readSeconds(dir)
	if err != nil {
		return Summary{}, err
	}
	for _, line := range lines {
		i := paceAt(orig.Paces, float64(line.Second))
		if line.Phase != "measure" || i < 0 || !w.holds(float64(line.Second)-measureStart) {
			continue
		}
		keptSeconds[line.Second] = true
		kept[i]++
		for _, target := range []*bucket{steps[i], total} {
			target.add(line)
		}
	}
	if len(keptSeconds) == 0 {
		return Summary{}, fmt.Errorf("no measured second falls in %s", w.Label())
	}

	var limits []Threshold
	for _, text := range orig.Thresholds {
		if t, err := ParseThreshold(text); err == nil {
			limits = append(limits, t)
		}
	}
	res, err := ReadResources(dir)
	if err != nil {
		return Summary{}, err
	}
	t := Tally{Meta: Meta{Scenario: orig.Scenario, PaceSet: orig.PaceSet + " · " + w.Label(), Target: orig.Target}, Thresholds: limits, Agents: orig.Agents, Resources: res, ResourceInfo: orig.Resources}
	var seconds float64
	for i, p := range orig.Paces {
		if kept[i] == 0 {
			continue
		}
		// The step's part of the window, seconds without events included.
		start := max(p.StartSecond, measureStart+w.From)
		end := p.StartSecond + p.Seconds
		if w.To > 0 {
			end = min(end, measureStart+w.To)
		}
		// Exact losses are known per whole step; over part of one they are
		// the events acknowledged and not delivered in the seconds kept.
		extra := StepExtra{Lost: p.Lost, GeneratorSaturated: p.GeneratorSaturated, SendOnly: p.SendOnly}
		if !p.SendOnly && (start > p.StartSecond || end < p.StartSecond+p.Seconds) {
			extra.Lost = max(0, steps[i].Accepted-steps[i].Delivered)
		}
		t.Steps = append(t.Steps, StepTally{Phase: p.Phase, Index: p.Index, TargetRPS: p.TargetRPS, Seconds: end - start, StartSecond: start, Extra: extra, b: steps[i]})
		seconds += kept[i]
	}
	t.Phases = map[string]PhaseTally{"measure": {Seconds: seconds, b: total}}
	sum := Summarize(t)
	// As the run wrote them: the schema it used, its thresholds' own text.
	sum.Schema, sum.Thresholds = orig.Schema, orig.Thresholds
	sum.Window = &WindowPart{From: w.From, To: w.To, MeasureStart: measureStart}

	if err := os.MkdirAll(out, 0o700); err != nil {
		return sum, err
	}
	if err := atomicfile.WriteJSON(filepath.Join(out, SummaryFile), sum); err != nil {
		return sum, err
	}
	if err := filterTSV(filepath.Join(dir, TimelineFile), filepath.Join(out, TimelineFile), "second", func(v float64) bool { return keptSeconds[int64(v)] }); err != nil {
		return sum, err
	}
	if err := filterTSV(filepath.Join(dir, SamplesFile), filepath.Join(out, SamplesFile), "at_s", func(v float64) bool { return keptSeconds[int64(v)] }); err != nil {
		return sum, err
	}
	return sum, nil
}

// readSeconds reads the per-second digests of a run directory, in the
// order they were written. A run killed while it wrote leaves a torn last
// gzip member: the lines before it are kept.
func readSeconds(dir string) ([]secondDigests, error) {
	f, err := os.Open(filepath.Join(dir, SecondsFile))
	if err != nil {
		return nil, fmt.Errorf("read per-second digests: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if errors.Is(err, io.EOF) {
		return nil, nil // no second was closed
	}
	if err != nil {
		return nil, fmt.Errorf("read per-second digests: %w", err)
	}
	var lines []secondDigests
	dec := json.NewDecoder(gz)
	for {
		var line secondDigests
		err := dec.Decode(&line)
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			var syntax *json.SyntaxError
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &syntax) {
				return lines, nil // a torn last member
			}
			return nil, fmt.Errorf("read per-second digests: %w", err)
		}
		lines = append(lines, line)
	}
}

// add adds a second's counts and digests to b.
func (b *bucket) add(line secondDigests) {
	b.Counts.add(line.Counts)
	for m, name := range metricNames {
		b.digests[m].Merge(line.Digests[name])
	}
}

// paceAt returns the index of the pace step whose seconds hold second, or -1.
func paceAt(paces []StepSummary, second float64) int {
	for i, p := range paces {
		if second >= p.StartSecond && second < p.StartSecond+p.Seconds {
			return i
		}
	}
	return -1
}

// filterTSV copies the header and the rows of src whose column holds a value
// keep accepts.
func filterTSV(src, dst, column string, keep func(float64) bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	col := -1
	w := bufio.NewWriter(out)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if col < 0 {
			for i, f := range fields {
				if f == column {
					col = i
				}
			}
			if col < 0 {
				return fmt.Errorf("%s has no column %s", src, column)
			}
			fmt.Fprintln(w, sc.Text())
			continue
		}
		if v, err := strconv.ParseFloat(fields[col], 64); err == nil && keep(v) {
			fmt.Fprintln(w, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return w.Flush()
}
