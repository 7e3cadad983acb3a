package matrix

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/perfrunner/runner/kube"
)

// A matrix whose target is held refuses to start, or with Wait waits
// until the holder lets go; the lock of a cluster is its own, whatever
// the machine's other clusters.
func TestLockWaitsForTheHolder(t *testing.T) {
	dir := t.TempDir()
	defer func(p time.Duration) { lockPoll = p }(lockPoll)
	lockPoll = 20 * time.Millisecond
	_, release, err := lockTarget(context.Background(), Options{LockDir: dir}, "local", "first")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lockTarget(context.Background(), Options{LockDir: dir}, "local", "second"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "first") {
		t.Fatalf("a held target: %v", err)
	}
	var said bytes.Buffer
	got := make(chan error, 1)
	go func() {
		_, unlock, err := lockTarget(context.Background(), Options{LockDir: dir, Wait: true, Say: &said}, "local", "second")
		if err == nil {
			unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("took a held lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the holder let go")
	}
	if !strings.Contains(said.String(), "waiting: another matrix is running on target local (pid ") {
		t.Errorf("the waiting matrix said %q", said.String())
	}
	// Waiting ends with the context.
	_, release, _ = lockTarget(context.Background(), Options{LockDir: dir}, "local", "first")
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := lockTarget(ctx, Options{LockDir: dir, Wait: true}, "local", "second"); !errors.Is(err, ErrInterrupted) {
		t.Errorf("a wait whose context ended: %v", err)
	}
	a, b := lockName("kubernetes", &kube.Connection{Server: "https://10.0.0.1:6443"}), lockName("kubernetes", &kube.Connection{Server: "https://10.0.0.2:6443"})
	if a == b || lockName("local", nil) != "runner-matrix-local.lock" {
		t.Errorf("lock names: %s %s", a, b)
	}
}
