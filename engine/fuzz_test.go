package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that the decoder never panics and that every problem it
// reports carries a position in the file.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../scenarios/*.yaml")
	files = append(files, "testdata/bad.yaml")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("name: s\nsetup:\n  - sleep: {duration: 1s}\n    timout: 1s\n"))
	f.Add([]byte("name: s\nvars: {a: 1}\nmeasure:\n  - exec: {command: ['{{ .Vars.a }}']}\n"))
	f.Add([]byte("name: &a s\nsetup: *a\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("{{"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := Decode("f.yaml", src, Options{})
		var ds Diagnostics
		if err != nil && !errors.As(err, &ds) {
			t.Fatalf("error is %T, not Diagnostics: %v", err, err)
		}
		for _, d := range ds {
			if d.Pos.File == "" {
				t.Errorf("diagnostic without a position: %v", d)
			}
		}
	})
}

// FuzzParsePace checks that the pace parser never panics, never accepts a
// step that sends nothing, and points inside the spec when it fails.
func FuzzParsePace(f *testing.F) {
	for _, s := range []string{"1000:30", "1000:30,1100:30", "1000:5m", " 500 : 10 , 600:1m30s", "0:1", "1:-1", ",", "1e400:1", "1:1e400", "NaN:NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		steps, err := ParsePace(spec)
		if err != nil {
			var pe *PaceError
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
