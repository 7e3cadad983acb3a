package input

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadRefusesWhatIsNotABoundedRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(dir, "large.yaml")
	if err := os.WriteFile(large, make([]byte, MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        "read " + fifo + ": a named pipe (FIFO), not a regular file",
		"/dev/zero": "read /dev/zero: a character device, not a regular file",
		dir:         "read " + dir + ": a directory, not a regular file",
		large:       "read " + large + ": larger than the 4 MiB an input file may hold",
	} {
		if _, err := Read(path); err == nil || err.Error() != want {
			t.Errorf("Read(%s) = %v, want %s", path, err, want)
		}
	}
}

func TestReadReturnsAFileOfTheLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	want := strings.Repeat("a", MaxBytes)
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || string(got) != want {
		t.Errorf("Read = %d bytes, %v", len(got), err)
	}
}
