// Package pace parses and describes paces: sequences of constant-rate
// intervals, written rps:duration[,rps:duration…]. It is shared by the
// scenario decoder and the load generator, and depends on neither.
package pace

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Step is one constant-rate interval of a pace.
type Step struct {
	RPS      float64       `json:"rps"`
	Duration time.Duration `json:"duration_ns"`
}

// Events returns how many events the step intends to send: rate × duration,
// rounded down.
func (s Step) Events() int64 {
	return int64(math.Floor(s.RPS*s.Duration.Seconds() + 1e-9))
}

// Pace is a sequence of constant-rate intervals, run one after another.
type Pace struct {
	Name  string `json:"name"` // the pace set's name, or the literal spec
	Spec  string `json:"spec"`
	Steps []Step `json:"steps"`
}

// Duration returns the pace's total length.
func (p Pace) Duration() time.Duration {
	var d time.Duration
	for _, s := range p.Steps {
		d += s.Duration
	}
	return d
}

// Events returns how many events the pace intends to send in all.
func (p Pace) Events() int64 {
	var n int64
	for _, s := range p.Steps {
		n += s.Events()
	}
	return n
}

// Error is a problem in a pace spec. Offset is the byte offset of the
// offending entry in the spec, so that callers can point at it.
type Error struct {
	Offset  int
	Entry   int // 1-based entry number
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("entry %d: %s", e.Entry, e.Message)
}

// maxStep bounds one entry's duration, so that arithmetic on schedules
// cannot overflow.
const maxStep = 7 * 24 * time.Hour

// maxRPS bounds one entry's rate, far above what one runner can send.
const maxRPS = 10_000_000.0

// Parse parses `rps:duration[,rps:duration…]`. A rate is a positive
// number of events per second; a duration is a positive number of seconds or
// a Go duration (`1000:30`, `1000:5m`). Whitespace around entries is allowed.
func Parse(spec string) ([]Step, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, &Error{Entry: 1, Message: "empty pace; write rps:seconds, e.g. 1000:30"}
	}
	var steps []Step
	offset := 0
	for i, raw := range strings.Split(spec, ",") {
		entryOffset := offset + len(raw) - len(strings.TrimLeft(raw, " \t"))
		offset += len(raw) + 1
		fail := func(format string, args ...any) error {
			return &Error{Offset: entryOffset, Entry: i + 1, Message: fmt.Sprintf(format, args...)}
		}
		entry := strings.TrimSpace(raw)
		rateText, durText, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fail("%q is not rps:duration", entry)
		}
		rate, err := strconv.ParseFloat(strings.TrimSpace(rateText), 64)
		if err != nil || math.IsNaN(rate) || math.IsInf(rate, 0) {
			return nil, fail("rate %q is not a number", rateText)
		}
		if rate <= 0 {
			return nil, fail("rate %s must be positive", strings.TrimSpace(rateText))
		}
		if rate > maxRPS {
			return nil, fail("rate %s is above %d events/s", strings.TrimSpace(rateText), int(maxRPS))
		}
		dur, err := parseDuration(strings.TrimSpace(durText))
		if err != nil {
			return nil, fail("%v", err)
		}
		step := Step{RPS: rate, Duration: dur}
		if step.Events() < 1 {
			return nil, fail("%q sends no event (rate × duration < 1)", entry)
		}
		steps = append(steps, step)
	}
	return steps, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		return 0, err
	case d <= 0:
		return 0, fmt.Errorf("duration %q must be positive", s)
	case d > maxStep:
		return 0, fmt.Errorf("duration %q is longer than %s", s, maxStep)
	}
	return d, nil
}

// ParseDuration reads a duration as paces write them: bare seconds (30,
// 2.5) or a Go duration (30s, 5m); its sign is the caller's to judge.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	secs, err := strconv.ParseFloat(s, 64)
	var d time.Duration
	switch {
	case err == nil && (math.IsNaN(secs) || math.IsInf(secs, 0) || secs > math.MaxInt64/float64(time.Second)):
		return 0, fmt.Errorf("duration %q is not a number of seconds", s)
	case err == nil:
		d = time.Duration(secs * float64(time.Second))
	default:
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("duration %q is neither seconds nor a Go duration (30, 30s, 5m)", s)
		}
	}
	return d, nil
}
