// Package input reads the files a person hands the runner (scenarios,
// values files, matrices, manifests) with bounds: regular files only, so
// that a FIFO cannot hang a run and a device cannot feed it without end,
// and at most MaxBytes.
package input

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxBytes bounds an input file; a hand-written scenario is a few KiB.
const MaxBytes = 4 << 20

// Read returns the contents of the regular file at path.
func Read(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO with no writer must not wait for one.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%s, not a regular file", describe(info.Mode()))}
	}
	if info.Size() > MaxBytes {
		return nil, tooLarge(path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes { // it grew since Stat
		return nil, tooLarge(path)
	}
	return data, nil
}

func tooLarge(path string) error {
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than the %d MiB an input file may hold", MaxBytes>>20)}
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
