package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Recover rebuilds the figures of a run killed while it measured, from
// what it had written: the pace steps in summary.json (written before each
// load's first event), the closed seconds in the per-second digests, and
// the seconds still open for late deliveries in OpenSecondsFile, which it
// appends to the timeline files. A pace step the run finished keeps the
// exact losses its load counted; the step the kill cut short counts as
// lost its events acknowledged and not delivered in the seconds kept, over
// those seconds. It rewrites summary.json and digests.json and reports how
// many seconds it kept; a run with no second written is left as it is.
func Recover(dir string) (Recovery, error) {
	orig, err := ReadSummary(dir)
	if err != nil {
		return Recovery{}, err
	}
	lines, err := readSeconds(dir)
	if err != nil {
		return Recovery{}, err
	}
	open, err := readOpenSeconds(dir)
	if err != nil {
		return Recovery{}, err
	}
	have := map[int64]bool{}
	for _, line := range lines {
		have[line.Second] = true
	}
	var extra []Second
	for _, line := range open {
		if !have[line.Second] {
			extra = append(extra, line.second())
		}
	}
	if len(extra) > 0 {
		tl, err := openTimeline(dir, os.O_APPEND, lines)
		if err != nil {
			return Recovery{}, err
		}
		err = tl.Write(extra)
		if closeErr := tl.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return Recovery{}, err
		}
		for _, c := range extra {
			lines = append(lines, digestLine(c))
		}
	}
	if len(lines) == 0 {
		return Recovery{}, nil
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].Second < lines[j].Second })

	planned := append([]StepSummary(nil), orig.Paces...)
	if orig.Warmup != nil {
		planned = append(append([]StepSummary(nil), orig.Warmup.Paces...), orig.Paces...)
	}
	var limits []Threshold
	for _, text := range orig.Thresholds {
		if t, err := ParseThreshold(text); err == nil {
			limits = append(limits, t)
		}
	}
	res, err := ReadResources(dir)
	if err != nil {
		return Recovery{}, err
	}
	t := Tally{
		Resources: res, ResourceInfo: orig.Resources,
		Meta:       Meta{Scenario: orig.Scenario, PaceSet: orig.PaceSet, Target: orig.Target},
		Phases:     map[string]PhaseTally{},
		Thresholds: limits,
		OutOfRange: orig.OutOfRange, AfterDrain: orig.AfterDrain, LateToTimeline: orig.LateToTimeline, Agents: orig.Agents,
	}
	for _, p := range planned {
		b, kept := newBucket(), 0
		for _, line := range lines {
			if line.Phase == p.Phase && float64(line.Second) >= p.StartSecond && float64(line.Second) < p.StartSecond+p.Seconds {
				b.add(line)
				kept++
			}
		}
		st := StepTally{Phase: p.Phase, Index: p.Index, TargetRPS: p.TargetRPS, Seconds: p.Seconds, StartSecond: p.StartSecond, b: b, Extra: StepExtra{SendOnly: p.SendOnly}}
		switch {
		case p.Intended > 0: // its load finished: its losses are exact
			st.Extra = p.StepExtra
		case kept == 0:
			st.NotRun = true
		default:
			st.Seconds = float64(kept)
			if !p.SendOnly {
				st.Extra.Lost = max(0, b.Accepted-b.Delivered)
			}
		}
		t.Steps = append(t.Steps, st)
		phase := t.Phases[p.Phase]
		if phase.b == nil {
			phase.b = newBucket()
		}
		phase.Seconds += st.Seconds
		t.Phases[p.Phase] = phase
	}
	for _, line := range lines {
		if phase, ok := t.Phases[line.Phase]; ok {
			phase.b.add(line)
		}
	}
	sum := Summarize(t)
	sum.Schema, sum.Thresholds = orig.Schema, orig.Thresholds
	rec := Recovery{
		Seconds:    len(lines),
		LastSecond: lines[len(lines)-1].Second,
		Note:       "rebuilt by runner cleanup from the seconds the run wrote before it was killed; the pace step it cut short counts its events acknowledged and not delivered as lost",
	}
	sum.Recovered = &rec

	saved := savedDigests{Phases: map[string]savedWindow{}}
	for _, st := range t.Steps {
		saved.Steps = append(saved.Steps, saveBucket(st.b, nil))
	}
	for phase, p := range t.Phases {
		saved.Phases[phase] = saveBucket(p.b, nil)
	}
	digests, err := json.Marshal(saved)
	if err != nil {
		return rec, err
	}
	if err := WriteSummary(dir, sum, digests); err != nil {
		return rec, err
	}
	if err := os.Remove(filepath.Join(dir, OpenSecondsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, err
	}
	return rec, nil
}

// readOpenSeconds reads OpenSecondsFile; none when it is absent.
func readOpenSeconds(dir string) ([]secondDigests, error) {
	f, err := os.Open(filepath.Join(dir, OpenSecondsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []secondDigests
	dec := json.NewDecoder(bufio.NewReader(f))
	for dec.More() {
		var line secondDigests
		if err := dec.Decode(&line); err != nil {
			return nil, fmt.Errorf("read %s: %w", OpenSecondsFile, err)
		}
		out = append(out, line)
	}
	return out, nil
}
