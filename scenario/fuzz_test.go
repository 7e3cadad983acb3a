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
		checkPositions(t, "f.yaml", src, Options{})
	})
}

// overridden is the scenario FuzzValues and FuzzSet override: variables of
// every shape, each used by a template.
const overridden = `name: o
vars: {n: 1, s: text, m: {x: 1, l: [a, b]}, e: ""}
measure:
  - exec: {command: [echo, '{{ .Vars.n }}', '{{ .Vars.s }}', '{{ .Vars.m.x }}', '{{ .Vars.e }}']}
`

// FuzzValues checks that any values file (-f) is decoded or refused with
// positions, never a panic.
func FuzzValues(f *testing.F) {
	f.Add([]byte("n: 2\ns: other\n"))
	f.Add([]byte("m: {x: 3}\n"))
	f.Add([]byte("m: {z: 3}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("n: [1, 2]\n<<: {s: t}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file := filepath.Join(t.TempDir(), "v.yaml")
		if err := os.WriteFile(file, src, 0o600); err != nil {
			t.Fatal(err)
		}
		checkPositions(t, "o.yaml", []byte(overridden), Options{ValuesFiles: []string{file}})
	})
}

// FuzzSet checks that any --set flag is applied or refused with its
// position, never a panic.
func FuzzSet(f *testing.F) {
	for _, kv := range []string{"n=2", "s=", "m.x=3", "m.l=[c]", "m.z=1", "=1", "n", "m.x.y=1", "e={a: 1}"} {
		f.Add(kv)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		checkPositions(t, "o.yaml", []byte(overridden), Options{Set: []string{kv}})
	})
}

// checkPositions decodes src and fails on an error that is not
// Diagnostics or a diagnostic without a position.
func checkPositions(t *testing.T, file string, src []byte, opts Options) {
	t.Helper()
	_, err := Decode(file, src, opts)
	var ds strictyaml.Diagnostics
	if err != nil && !errors.As(err, &ds) {
		t.Fatalf("error is %T, not Diagnostics: %v", err, err)
	}
	for _, d := range ds {
		if d.Pos.File == "" {
			t.Errorf("diagnostic without a position: %v", d)
		}
	}
}
