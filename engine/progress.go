package engine

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/perfrunner/runner/scenario"
)

// Observer is told what a run is doing, for a progress view. Calls come from
// the run's goroutine, one at a time.
type Observer interface {
	RunStarted(dir string, sc *scenario.Scenario)
	PhaseStarted(p scenario.Phase)
	StepStarted(s *scenario.Step, attempt int, expected time.Duration)
	StepFinished(s *scenario.Step, rec StepRecord)
	Undone(u UndoRecord)
	StepStatus(s *scenario.Step, status string) // the step's live status, replacing the last
	StepOutput(s *scenario.Step, line string)   // a line the step wants a person to read
	Message(line string)                        // a line about the run itself
}

type nopObserver struct{}

func (nopObserver) RunStarted(string, *scenario.Scenario)          {}
func (nopObserver) PhaseStarted(scenario.Phase)                    {}
func (nopObserver) StepStarted(*scenario.Step, int, time.Duration) {}
func (nopObserver) StepFinished(*scenario.Step, StepRecord)        {}
func (nopObserver) Undone(UndoRecord)                              {}
func (nopObserver) StepStatus(*scenario.Step, string)              {}
func (nopObserver) StepOutput(*scenario.Step, string)              {}
func (nopObserver) Message(string)                                 {}

// Progress shows a run to a person. On a terminal it keeps one live status
// line (phase, step, elapsed time, and a bar for steps of known length) under
// the lines of finished steps; elsewhere it writes one plain line per event.
type Progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu       sync.Mutex
	phase    scenario.Phase
	step     *scenario.Step
	attempt  int
	started  time.Time
	expected time.Duration
	status   string    // the running step's own live status
	printed  time.Time // when a status line was last printed, off a terminal
	lastLine string    // the status line printed then
	stop     chan struct{}
	stopped  chan struct{}
}

// NewProgress returns a progress view writing to w; live selects the
// terminal view. Call Close when the run is over.
func NewProgress(w io.Writer, live bool) *Progress {
	p := &Progress{w: w, tty: live, now: time.Now}
	if live {
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
	if p.tty {
		close(p.stop)
		<-p.stopped
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\033[K")
		p.mu.Unlock()
	}
}

// println writes a permanent line above the live status line.
func (p *Progress) println(format string, args ...any) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.tty {
		p.redraw()
	}
}

func (p *Progress) redraw() {
	if p.step == nil {
		return
	}
	fmt.Fprint(p.w, "\r\033[K"+p.statusLine(p.now()))
}

// statusLine is the live line: phase, step, elapsed and, for steps of known
// length, a bar.
func (p *Progress) statusLine(now time.Time) string {
	elapsed := now.Sub(p.started)
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %s", p.phase, p.step.Label())
	if p.attempt > 1 {
		fmt.Fprintf(&b, " attempt %d", p.attempt)
	}
	fmt.Fprintf(&b, "  %s", formatElapsed(elapsed))
	if p.expected > 0 {
		frac := min(float64(elapsed)/float64(p.expected), 1)
		const width = 24
		filled := int(frac * width)
		fmt.Fprintf(&b, " / %s [%s%s] %3.0f%%", formatElapsed(p.expected), strings.Repeat("#", filled), strings.Repeat("-", width-filled), frac*100)
	}
	if p.status != "" {
		b.WriteString("  " + p.status)
	}
	return b.String()
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
	if !p.tty {
		p.println("%s", ph)
	}
}

// StepStarted shows the step.
func (p *Progress) StepStarted(s *scenario.Step, attempt int, expected time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step, p.attempt, p.started, p.expected, p.status = s, attempt, p.now(), expected, ""
	if p.tty {
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
	p.step = nil
	line := fmt.Sprintf("  %s: %s", s.Label(), rec.Status)
	switch {
	case rec.Status == "skipped":
		line += " (" + rec.Reason + ")"
	case rec.Error != "":
		line += fmt.Sprintf(" after %s: %s", formatElapsed(time.Duration(rec.DurationMS*float64(time.Millisecond))), rec.Error)
	default:
		line += fmt.Sprintf(" in %s", formatElapsed(time.Duration(rec.DurationMS*float64(time.Millisecond))))
	}
	if p.tty {
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
	if p.tty {
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
