// Package flock takes exclusive, non-blocking file locks that the kernel
// releases when their holder closes the file or dies.
package flock

import (
	"errors"
	"os"
	"syscall"
)

// ErrHeld is returned when another open file holds the lock.
var ErrHeld = errors.New("the lock is held")

// Try opens (creating it with perm) and locks the file at path; the lock
// lasts until the returned file is closed.
func Try(path string, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, perm)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, ErrHeld
	}
	return f, nil
}
