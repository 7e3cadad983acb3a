package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/perfrunner/runner/report"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
)

// Observer is told what a run is doing, for a progress view. Calls come from
// the run's goroutine, one at a time.
type Observer interface {
	RunStarted(dir string, sc *scenario.Scenario)
	PhaseStarted(p scenario.Phase)
	StepStarted(s *scenario.Step, attempt int, expected time.Duration)
	StepFinished(s *scenario.Step, rec StepRecord)
	Undone(u UndoRecord)
	StepStatus(s *scenario.Step, status string)       // the step's live status, replacing the last
	LoadStatus(s *scenario.Step, st steps.LoadStatus) // a load's figures, once a second
	StepOutput(s *scenario.Step, line string)         // a line the step wants a person to read
	Message(line string)                              // a line about the run itself
	Closed(c Closing)                                 // how the run ended: its last call
}

// Closing is how a run ended, for its closing block: what was measured
// (nil when nothing was), the exit code with its meaning, and the run
// directory.
type Closing struct {
	Summary *results.Summary
	Ending  report.Ending
	Dir     string
}

type nopObserver struct{}

func (nopObserver) RunStarted(string, *scenario.Scenario)          {}
func (nopObserver) PhaseStarted(scenario.Phase)                    {}
func (nopObserver) StepStarted(*scenario.Step, int, time.Duration) {}
func (nopObserver) StepFinished(*scenario.Step, StepRecord)        {}
func (nopObserver) Undone(UndoRecord)                              {}
func (nopObserver) StepStatus(*scenario.Step, string)              {}
func (nopObserver) LoadStatus(*scenario.Step, steps.LoadStatus)    {}
func (nopObserver) Closed(Closing)                                 {}
func (nopObserver) StepOutput(*scenario.Step, string)              {}
func (nopObserver) Message(string)                                 {}

// Progress shows a run to a person. On a terminal it keeps one live status
// line (phase, step, elapsed time, and a bar for steps of known length) under
// the lines of finished steps, cut to the terminal's width; elsewhere it
// writes one plain line per event. It ends with the closing block.
type Progress struct {
	w    io.Writer
	opts ProgressOptions
	now  func() time.Time

	mu       sync.Mutex
	phase    scenario.Phase
	step     *scenario.Step
	attempt  int
	started  time.Time
	expected time.Duration
	status   string            // the running step's own live status
	load     *steps.LoadStatus // the running load's last second
	printed  time.Time         // when a status line was last printed, off a terminal
	lastLine string            // the status line printed then
	stop     chan struct{}
	stopped  chan struct{}
}

// ProgressOptions say how a Progress shows a run.
type ProgressOptions struct {
	Live  bool       // a terminal: one live status line
	Width func() int // the terminal's columns; nil or 0 for no limit
	Color bool       // verdicts in colour
	Quiet bool       // nothing but the closing block
	// JSON, when set, receives one JSON object per second of each load
	// and, last, the run's ending with its summary (--output json).
	JSON io.Writer
}

// NewProgress returns a progress view writing to w; live selects the
// terminal view. Call Close when the run is over.
func NewProgress(w io.Writer, live bool) *Progress {
	return NewProgressWith(w, ProgressOptions{Live: live})
}

// NewProgressWith returns a progress view writing to w as opts say. Call
// Close when the run is over.
func NewProgressWith(w io.Writer, opts ProgressOptions) *Progress {
	if opts.Quiet {
		opts.Live = false
	}
	p := &Progress{w: w, opts: opts, now: time.Now}
	if opts.Live {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.loop()
	}
	return p
}

func (p *Progress) loop() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// Close stops the live view and clears its status line.
func (p *Progress) Close() {
	if p.opts.Live {
		close(p.stop)
		<-p.stopped
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\033[K")
		p.mu.Unlock()
	}
}

// println writes a permanent line above the live status line; nothing
// when quiet.
func (p *Progress) println(format string, args ...any) {
	if p.opts.Quiet {
		return
	}
	if p.opts.Live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.opts.Live {
		p.redraw()
	}
}

func (p *Progress) redraw() {
	if p.step == nil {
		return
	}
	width := 0
	if p.opts.Width != nil {
		// One column short: a line that fills the last column makes some
		// terminals wrap, and the next redraw would clear only the wrap.
		width = max(p.opts.Width()-1, 0)
	}
	fmt.Fprint(p.w, "\r\033[K"+p.statusLine(p.now(), width))
}

// field is a part of the live line; when the line is too wide, the fields
// of lowest rank go first.
type field struct {
	text string
	rank int
}

// Ranks of the live line's fields: what a person looks at first stays.
const (
	rankBar = iota + 1
	rankName
	rankAttempt
	rankQuiet // a failure or drop count that is 0
	rankLatency
	rankDelivered
	rankSent
	rankPace
	rankAlarm // failures or drops that happened
	rankTime
	rankPhase
)

// statusLine is the live line, cut to width columns (0: no limit): phase,
// step, elapsed and, for steps of known length, a bar; for a load, its
// pace step and the last second's rates, failures, drops and p99s.
func (p *Progress) statusLine(now time.Time, width int) string {
	elapsed := now.Sub(p.started)
	fields := []field{{fmt.Sprintf("%-7s", p.phase), rankPhase}, {p.step.Name, rankName}}
	if p.attempt > 1 {
		fields = append(fields, field{fmt.Sprintf("attempt %d", p.attempt), rankAttempt})
	}
	switch {
	case p.expected > 0 && elapsed > p.expected && p.load != nil:
		// The pace is sent; the load waits for its last deliveries.
		fields = append(fields, field{fmt.Sprintf("%s draining +%s", formatElapsed(p.expected), formatElapsed(elapsed-p.expected)), rankTime})
	case p.expected > 0 && elapsed <= p.expected:
		frac := float64(elapsed) / float64(p.expected)
		const barWidth = 20
		filled := int(frac * barWidth)
		fields = append(fields,
			field{fmt.Sprintf("%s/%s %3.0f%%", formatElapsed(elapsed), formatElapsed(p.expected), frac*100), rankTime},
			field{"[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]", rankBar})
	default:
		fields = append(fields, field{formatElapsed(elapsed), rankTime})
	}
	if st := p.load; st != nil {
		fields = append(fields, field{fmt.Sprintf("step %d/%d %g/s", st.Step, st.Steps, st.TargetRPS), rankPace},
			field{fmt.Sprintf("sent %d/s", st.Sent), rankSent})
		if !st.SendOnly {
			fields = append(fields, field{fmt.Sprintf("deliv %d/s", st.Delivered), rankDelivered})
		}
		fields = append(fields, countField("failed", st.TotalSendFailures), countField("dropped", st.TotalDropped))
		latency := fmt.Sprintf("p99 pub %.2f ms", st.PublishP99MS)
		if !st.SendOnly {
			latency = fmt.Sprintf("p99 pub %.2f e2e %.2f ms", st.PublishP99MS, st.E2EP99MS)
		}
		fields = append(fields, field{latency, rankLatency})
	} else if p.status != "" {
		fields = append(fields, field{p.status, rankLatency})
	}
	return fit(fields, width)
}

func countField(what string, n int64) field {
	if n == 0 {
		return field{what + " 0", rankQuiet}
	}
	return field{fmt.Sprintf("%s %d", what, n), rankAlarm}
}

// fit joins fields, dropping those of lowest rank (the rightmost first
// among equals) until the line fits width columns, and cutting what is
// still too long.
func fit(fields []field, width int) string {
	line := joinFields(fields)
	for width > 0 && utf8.RuneCountInString(line) > width && len(fields) > 1 {
		low := len(fields) - 1
		for i := len(fields) - 1; i >= 0; i-- {
			if fields[i].rank < fields[low].rank {
				low = i
			}
		}
		fields = slices.Delete(fields, low, low+1)
		line = joinFields(fields)
	}
	if r := []rune(line); width > 0 && len(r) > width {
		line = string(r[:width-1]) + "…"
	}
	return line
}

func joinFields(fields []field) string {
	texts := make([]string, len(fields))
	for i, f := range fields {
		texts[i] = f.text
	}
	return strings.Join(texts, "  ")
}

func formatElapsed(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	m := int(d / time.Minute)
	s := (d % time.Minute).Seconds()
	return fmt.Sprintf("%02d:%04.1f", m, s)
}

// RunStarted prints the run directory.
func (p *Progress) RunStarted(dir string, sc *scenario.Scenario) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pace := sc.Pace.Spec
	if len(sc.Provides) > 0 {
		p.println("platform %s → %s", sc.Name, dir)
		return
	}
	if pace == "" {
		pace = "none"
	}
	p.println("run %s (pace %s) → %s", sc.Name, pace, dir)
}

// PhaseStarted notes the phase.
func (p *Progress) PhaseStarted(ph scenario.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = ph
	if !p.opts.Live {
		p.println("%s", ph)
	}
}

// StepStarted shows the step.
func (p *Progress) StepStarted(s *scenario.Step, attempt int, expected time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step, p.attempt, p.started, p.expected, p.status, p.load = s, attempt, p.now(), expected, "", nil
	if p.opts.Live {
		p.redraw()
		return
	}
	if attempt > 1 {
		p.println("  %s: attempt %d", s.Label(), attempt)
	} else {
		p.println("  %s: started", s.Label())
	}
}

// StepFinished prints the step's outcome.
func (p *Progress) StepFinished(s *scenario.Step, rec StepRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step, p.load = nil, nil
	if p.opts.Quiet {
		return
	}
	line := fmt.Sprintf("  %s: %s", s.Label(), rec.Status)
	switch {
	case rec.Status == "skipped":
		line += " (" + rec.Reason + ")"
	case rec.Error != "":
		line += fmt.Sprintf(" after %s: %s", formatElapsed(time.Duration(rec.DurationMS*float64(time.Millisecond))), rec.Error)
	default:
		line += fmt.Sprintf(" in %s", formatElapsed(time.Duration(rec.DurationMS*float64(time.Millisecond))))
	}
	if p.opts.Live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, line)
}

// Off a terminal, a step's status is printed at most every statusEvery,
// and a status that has not changed only every statusRepeat.
const (
	statusEvery  = 5 * time.Second
	statusRepeat = 30 * time.Second
)

// StepStatus shows the step's live status: on the status line of a
// terminal, else as a line every few seconds while it changes.
func (p *Progress) StepStatus(s *scenario.Step, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
	p.statusChanged(s, status)
}

// statusChanged shows a new status: at once on a terminal, else as a line
// at most every statusEvery, and every statusRepeat when it stays the same.
func (p *Progress) statusChanged(s *scenario.Step, status string) {
	if p.opts.Live {
		p.redraw()
		return
	}
	line := fmt.Sprintf("  %s: %s", s.Label(), status)
	since := p.now().Sub(p.printed)
	if since >= statusRepeat || (since >= statusEvery && line != p.lastLine) {
		p.printed = p.now()
		p.lastLine = line
		p.println("%s", line)
	}
}

// LoadStatus shows a load's last second on the live line, or off a
// terminal as a status line every few seconds; with JSON set, it writes
// the second as a JSON object.
func (p *Progress) LoadStatus(s *scenario.Step, st steps.LoadStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.load = &st
	if p.opts.JSON != nil {
		line, err := json.Marshal(struct {
			Type string `json:"type"`
			Name string `json:"step_name"`
			steps.LoadStatus
		}{"second", s.Name, st})
		if err == nil {
			fmt.Fprintf(p.opts.JSON, "%s\n", line)
		}
	}
	if p.opts.Live {
		p.redraw()
		return
	}
	status := fmt.Sprintf("pace step %d/%d at %g/s: sent %d/s", st.Step, st.Steps, st.TargetRPS, st.Sent)
	if !st.SendOnly {
		status += fmt.Sprintf(", delivered %d/s", st.Delivered)
	}
	status += fmt.Sprintf(", %d failed, %d dropped so far, p99 publish %.2f ms", st.TotalSendFailures, st.TotalDropped, st.PublishP99MS)
	if !st.SendOnly {
		status += fmt.Sprintf(", e2e %.2f ms", st.E2EP99MS)
	}
	p.statusChanged(s, status)
}

// Closed prints the closing block, even when quiet; with JSON set, it
// writes the ending and the summary as the last JSON object.
func (p *Progress) Closed(c Closing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON != nil {
		line, err := json.Marshal(struct {
			Type string `json:"type"`
			report.Ending
			Dir     string           `json:"dir"`
			Summary *results.Summary `json:"summary"`
		}{"end", c.Ending, c.Dir, c.Summary})
		if err == nil {
			fmt.Fprintf(p.opts.JSON, "%s\n", line)
		}
	}
	if p.opts.Quiet && p.opts.JSON != nil {
		return // nothing but the JSON
	}
	var paint report.Paint
	if p.opts.Color {
		paint = ansiPaint
	}
	if p.opts.Live {
		fmt.Fprint(p.w, "\r\033[K")
	}
	for _, line := range report.Closing(c.Summary, c.Ending, c.Dir, paint) {
		fmt.Fprintln(p.w, line)
	}
}

// ansiPaint colours the closing block's words on a terminal.
func ansiPaint(class report.Class, text string) string {
	code := map[report.Class]string{report.Good: "32", report.Bad: "31", report.Doubtful: "33", report.Strong: "1"}[class]
	if code == "" {
		return text
	}
	return "\033[" + code + "m" + text + "\033[0m"
}

// StepOutput prints a line from the step.
func (p *Progress) StepOutput(s *scenario.Step, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println("%s", line)
}

// Message prints a line about the run.
func (p *Progress) Message(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println("%s", line)
}

// Undone prints what teardown or cleanup removed.
func (p *Progress) Undone(u UndoRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u.Error != "" {
		p.println("  undo %s: %s: %s", u.Resource, u.Status, u.Error)
		return
	}
	p.println("  undo %s: %s", u.Resource, u.Status)
}
