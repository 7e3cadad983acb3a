package twins

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func TestEveryPicksExactShare(t *testing.T) {
	for _, rate := range []float64{0, 0.001, 0.01, 0.1, 1.0 / 3, 0.5, 1} {
		e := every{rate: rate}
		picked := 0
		for range 9999 {
			if e.next() {
				picked++
			}
		}
		if want := int(math.Floor(9999 * rate)); picked != want {
			t.Errorf("rate %g: picked %d of 9999, want %d", rate, picked, want)
		}
	}
}

func TestParseLatency(t *testing.T) {
	for spec, check := range map[string]func(time.Duration) bool{
		"2ms":                  func(d time.Duration) bool { return d == 2*time.Millisecond },
		"uniform:1ms-3ms":      func(d time.Duration) bool { return d >= time.Millisecond && d <= 3*time.Millisecond },
		"exponential:1ms":      func(d time.Duration) bool { return d >= 0 },
		"normal:5ms,1ms":       func(d time.Duration) bool { return d >= 0 && d < 20*time.Millisecond },
		"normal:0s,10ms":       func(d time.Duration) bool { return d >= 0 },
		"uniform: 1ms - 1ms ":  func(d time.Duration) bool { return d == time.Millisecond },
		"exponential: 500µs  ": func(d time.Duration) bool { return d >= 0 },
	} {
		f, err := parseLatency(spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		for range 1000 {
			if d := f(); !check(d) {
				t.Errorf("%q gave %s", spec, d)
				break
			}
		}
	}
	// The mean of the exponential is its parameter.
	f, _ := parseLatency("exponential:2ms")
	var sum time.Duration
	for range 20000 {
		sum += f()
	}
	if mean := sum / 20000; mean < 1800*time.Microsecond || mean > 2200*time.Microsecond {
		t.Errorf("exponential:2ms has mean %s", mean)
	}
	for _, bad := range []string{"fast", "-2ms", "uniform:3ms-1ms", "uniform:1ms", "exponential:x", "normal:5ms", "gamma:1ms"} {
		if _, err := parseLatency(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if f, err := parseLatency(""); f != nil || err != nil {
		t.Errorf("empty latency: %v, %v", f != nil, err)
	}
}

func TestISODuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"PT0.2S": 200 * time.Millisecond, "PT5M": 5 * time.Minute, "PT1H30M": 90 * time.Minute,
		"P1D": 24 * time.Hour, "P1DT1S": 24*time.Hour + time.Second, "PT1.5S": 1500 * time.Millisecond,
	} {
		got, err := isoDuration(s)
		if err != nil || got != want {
			t.Errorf("%s = %s, %v; want %s", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "P", "0.2S", "PT", "PT5", "PTS", "P5H", "PT1D", "5s"} {
		if _, err := isoDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The limiter holds its rate: 200 events at 2000/s take about 100 ms,
// never less than the schedule allows (its first burst aside), and late
// wake-ups are made up, so not much more either.
func TestLimiterHoldsItsRate(t *testing.T) {
	l := &limiter{interval: 500 * time.Microsecond}
	start := time.Now()
	for range 200 {
		if err := l.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if took < 99*time.Millisecond-burstWindow {
		t.Errorf("200 events at 2000/s took %s", took)
	}
	if !raceEnabled && took > 150*time.Millisecond {
		t.Errorf("200 events at 2000/s took %s: late wake-ups were not made up", took)
	}
}

func TestKnobsBacklog(t *testing.T) {
	for _, c := range []struct {
		k    Knobs
		want int
	}{{Knobs{}, 10000}, {Knobs{Capacity: 1500}, 150}, {Knobs{Capacity: 5}, 1}, {Knobs{Capacity: 1500, Backlog: 7}, 7}} {
		kn, err := c.k.build()
		if err != nil || kn.backlog != c.want {
			t.Errorf("%+v: backlog %d (%v), want %d", c.k, kn.backlog, err, c.want)
		}
	}
	if _, err := (Knobs{Latency: "soon"}).build(); err == nil || !strings.Contains(err.Error(), "twin.latency") {
		t.Errorf("bad latency: %v", err)
	}
}
