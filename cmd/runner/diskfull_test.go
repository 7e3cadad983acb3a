package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/perfrunner/runner/engine"
)

// TestDiskFullDuringMeasure runs on a small tmpfs that setup fills but for
// 40 KB: the timeline soon cannot be written, the load stops at once, and
// the run tears down and says so once, with run.json failed for a full disk
// and no temporary file left.
func TestDiskFullDuringMeasure(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("no tmpfs to fill here: %v %s", err, out)
	}
	// The host is left as it was: unmounted even when something still
	// holds the file system (lazily, then), and the failure reported.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: full
setup:
  - receiver: {name: perf}
  - name: fill
    exec:
      command: [sh, -c, 'avail=$(df --output=avail -B1 . | tail -1); head -c $((avail - 40000)) /dev/zero > fill']
      dir: `+mnt+`
measure:
  - load: {sink: receiver/perf, pace: "500:60", payloadBytes: 64}
`)
	root := filepath.Join(mnt, "results")
	started := time.Now()
	// A process of its own, so that its files are closed before umount.
	cmd := exec.Command(os.Args[0], "exec", file, "--out", root)
	cmd.Env = append(os.Environ(), "RUNNER_TEST_AS_CLI=1")
	combined, _ := cmd.CombinedOutput()
	code, out := cmd.ProcessState.ExitCode(), string(combined)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d:\n%s", code, exitFailed, out)
	}
	if took := time.Since(started); took > 30*time.Second {
		t.Errorf("the run took %s: the load went on with nowhere to write", took)
	}
	if !strings.Contains(out, "the results cannot be written") || !strings.Contains(out, "undo receiver/perf: undone") {
		t.Errorf("the load did not stop on the full disk, or teardown did not run:\n%s", out)
	}
	if n := strings.Count(out, "disk full:"); n != 1 {
		t.Errorf("disk full said %d times:\n%s", n, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if line != "" && seen[line] {
			t.Errorf("line repeated: %s", line)
		}
		seen[line] = true
	}
	runDir := runDirs(t, root)[0]
	rec, err := engine.ReadRunRecord(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "failed" || rec.Reason != "disk full" {
		t.Errorf("run.json: status %q, reason %q", rec.Status, rec.Reason)
	}
	left, _ := filepath.Glob(filepath.Join(runDir, "*.tmp"))
	if _, err := os.Stat(filepath.Join(runDir, engine.ReserveFile)); err == nil {
		left = append(left, engine.ReserveFile)
	}
	if len(left) > 0 {
		t.Errorf("left in the run directory: %v", left)
	}
}

// TestNoGraphNoiseAfterAFailedStart: a run whose first load fails before
// it sends says once that no graph was drawn, and gnuplot prints nothing.
func TestNoGraphNoiseAfterAFailedStart(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: nograph
setup:
  - receiver: {name: perf}
warmup:
  - warmup: {url: "http://127.0.0.1:1/", pace: "10:1", probeTimeout: 1s}
measure:
  - load: {sink: receiver/perf, pace: "10:1"}
`)
	code, stdout, stderr := runCLI("exec", file, "--out", filepath.Join(dir, "results"))
	out := stdout + stderr
	if code != exitFailed {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if n := strings.Count(out, "no graph drawn: the run measured no pace step"); n != 1 || strings.Contains(out, "gnuplot") || strings.Contains(out, "warning") {
		t.Errorf("output:\n%s", out)
	}
}
