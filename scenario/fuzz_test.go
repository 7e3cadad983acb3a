package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/perfrunner/runner/internal/strictyaml"
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
		var ds strictyaml.Diagnostics
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
