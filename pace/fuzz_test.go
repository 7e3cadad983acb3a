package pace

import (
	"errors"
	"testing"
)

// FuzzParse checks that the pace parser never panics, never accepts a
// step that sends nothing, and points inside the spec when it fails.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1000:30", "1000:30,1100:30", "1000:5m", " 500 : 10 , 600:1m30s", "0:1", "1:-1", ",", "1e400:1", "1:1e400", "NaN:NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		steps, err := Parse(spec)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T: %v", err, err)
			}
			if pe.Offset < 0 || pe.Offset > len(spec) {
				t.Fatalf("offset %d outside %q", pe.Offset, spec)
			}
			return
		}
		for _, s := range steps {
			if s.RPS <= 0 || s.Duration <= 0 || s.Events() < 1 {
				t.Fatalf("accepted a step that sends nothing: %+v from %q", s, spec)
			}
		}
	})
}
