package engine

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/perfrunner/runner/steps"
)

// panicker is a step kind with a bug: it panics.
type panicker struct{}

func (*panicker) Run(context.Context, *steps.Env) error {
	panic("index out of range [3] with length 3")
}

func init() {
	steps.Register(steps.Kind{Name: "test.panic", New: func() steps.Spec { return new(panicker) }})
}

// TestPanicInAStepTearsDown: a step kind that panics fails its step, the
// run tears down (the file setup made is gone, the receiver's port is
// closed), and run.json says failed, the stack in runner.log.
func TestPanicInAStepTearsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir, r, err := runScenario(t, context.Background(), `name: p
setup:
  - receiver: {name: perf, address: "`+addr+`"}
  - exec: {command: [touch, DIR/a], undo: [rm, -f, DIR/a]}
measure:
  - name: buggy
    test.panic: {}
`)
	if err == nil || !strings.Contains(err.Error(), `step "buggy" (test.panic): panic: index out of range [3] with length 3 (a bug in the runner; the stack is in runner.log)`) {
		t.Fatalf("Run error = %v", err)
	}
	if exists(filepath.Join(dir, "a")) {
		t.Error("teardown did not undo setup")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("still listening on %s", addr)
	}
	rec, err := ReadRunRecord(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "failed" || stepStatuses(*rec)["buggy"] != "failed" {
		t.Errorf("run %q, step %q", rec.Status, stepStatuses(*rec)["buggy"])
	}
	log, _ := os.ReadFile(filepath.Join(r.Dir(), LogFile))
	if !strings.Contains(string(log), "panic_test.go") {
		t.Error("runner.log holds no stack")
	}
}
