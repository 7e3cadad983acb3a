package pace

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    []Step
		wantErr string
		offset  int
	}{
		{name: "one step in seconds", spec: "1000:30", want: []Step{{1000, 30 * time.Second}}},
		{name: "steps with Go durations and spaces", spec: "1000:5m, 1100:1m30s", want: []Step{{1000, 5 * time.Minute}, {1100, 90 * time.Second}}},
		{name: "fractional rate", spec: "0.5:10", want: []Step{{0.5, 10 * time.Second}}},
		{name: "empty", spec: " ", wantErr: "entry 1: empty pace; write rps:seconds, e.g. 1000:30"},
		{name: "no colon", spec: "1000", wantErr: `entry 1: "1000" is not rps:duration`},
		{name: "zero rate", spec: "1000:30,0:30", wantErr: "entry 2: rate 0 must be positive", offset: 8},
		{name: "negative rate", spec: "-5:30", wantErr: "entry 1: rate -5 must be positive"},
		{name: "rate not a number", spec: "1k:30", wantErr: `entry 1: rate "1k" is not a number`},
		{name: "NaN rate", spec: "NaN:30", wantErr: `entry 1: rate "NaN" is not a number`},
		{name: "zero duration", spec: "10:0", wantErr: `entry 1: duration "0" must be positive`},
		{name: "negative Go duration", spec: "10:-1s", wantErr: `entry 1: duration "-1s" must be positive`},
		{name: "bad duration", spec: "10:soon", wantErr: `entry 1: duration "soon" is neither seconds nor a Go duration (30, 30s, 5m)`},
		{name: "empty entry", spec: "10:1,,20:1", wantErr: `entry 2: "" is not rps:duration`, offset: 5},
		{name: "no event", spec: "0.5:1", wantErr: `entry 1: "0.5:1" sends no event (rate × duration < 1)`},
		{name: "too long", spec: "1:2000h", wantErr: `entry 1: duration "2000h" is longer than 168h0m0s`},
		{name: "too fast", spec: "1e9:1", wantErr: `entry 1: rate 1e9 is above 10000000 events/s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if tt.wantErr != "" {
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("Parse(%q) = %v, %v; want error %q", tt.spec, got, err, tt.wantErr)
				}
				if err.Error() != tt.wantErr || pe.Offset != tt.offset {
					t.Errorf("error = %q at %d, want %q at %d", err, pe.Offset, tt.wantErr, tt.offset)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("step %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestPaceTotals(t *testing.T) {
	steps, err := Parse("1000:30,1100:30,1200:30,1300:30,1400:30,1500:30,1600:30,1700:30,1800:30,1900:30,2000:30")
	if err != nil {
		t.Fatal(err)
	}
	p := Pace{Steps: steps}
	if p.Duration() != 330*time.Second {
		t.Errorf("duration = %v, want 5m30s", p.Duration())
	}
	if p.Events() != 495000 {
		t.Errorf("events = %d, want 495000", p.Events())
	}
	if (Step{RPS: 3, Duration: time.Second / 3}).Events() != 1 {
		t.Error("3 rps over a third of a second must be one event despite rounding")
	}
}
