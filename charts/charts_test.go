package charts

import (
	"crypto/sha256"
	"io/fs"
	"testing"
)

// No two files of the charts are the same: what several charts share lives
// in a library chart they depend on.
func TestNoFileIsCopied(t *testing.T) {
	seen := map[[32]byte]string{}
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if first, ok := seen[sum]; ok {
			t.Errorf("%s is a copy of %s", p, first)
		}
		seen[sum] = p
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 20 {
		t.Fatalf("only %d files in the charts", len(seen))
	}
}

func TestLibrary(t *testing.T) {
	if !Library("knative-lib") || Library("in-memory-channel") || Library("no-such-chart") {
		t.Error("Library misjudges the charts")
	}
}
