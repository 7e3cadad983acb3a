package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfrunner/runner/results"
)

// TestKilledDuringMeasureKeepsEverySecond kills a run with SIGKILL twelve
// seconds into measure: past the ten seconds a second stays open for late
// deliveries, so that the seconds it kept are both closed ones and open
// ones. runner cleanup then rebuilds summary.json: it counts the events of
// every second that ended at least a second before the kill, and runner
// plot renders it.
func TestKilledDuringMeasureKeepsEverySecond(t *testing.T) {
	const rate = 200
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: k
setup:
  - receiver: {name: perf}
warmup:
  - warmup: {sink: receiver/perf, pace: "100:2", payloadBytes: 64}
measure:
  - load: {sink: receiver/perf, pace: "`+strconv.Itoa(rate)+`:60", payloadBytes: 64}
`)
	root := filepath.Join(dir, "results")
	cmd, out := startCLI(t, "exec", file, "--out", root)
	start := measureStart(t, root)
	time.Sleep(time.Until(start.Add(12*time.Second + 400*time.Millisecond)))
	killedAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 10*time.Second, out)
	runDir := runDirs(t, root)[0]

	code, stdout, stderr := runCLI("cleanup", runDir)
	if code != exitOK || !strings.Contains(stdout, "figures rebuilt from") {
		t.Fatalf("cleanup: exit %d\n%s%s", code, stdout, stderr)
	}
	sum := readSummary(t, runDir)
	if sum.Recovered == nil || len(sum.Paces) != 1 {
		t.Fatalf("summary: recovered %v, %d paces", sum.Recovered, len(sum.Paces))
	}
	// Every measured second that ended a second before the kill has its
	// row, with every event the pace meant to send in it.
	rows := measureRows(t, runDir)
	full := int(killedAt.Add(-time.Second).Sub(start) / time.Second)
	if len(rows) < full {
		t.Errorf("%d measured seconds kept, want at least the %d that ended a second before the kill", len(rows), full)
	}
	for i, intended := range rows {
		if i < full && intended != rate {
			t.Errorf("second %d of measure: %d events intended, want %d", i, intended, rate)
		}
	}
	total := int64(0)
	for _, n := range rows {
		total += n
	}
	if got := sum.Paces[0].Intended; got != total || got < int64(full*rate) {
		t.Errorf("summary counts %d intended events; the rows kept hold %d, the seconds that ended a second before the kill %d", got, total, full*rate)
	}
	if sum.Paces[0].Delivered < int64(full*rate) {
		t.Errorf("summary counts %d delivered, want at least %d", sum.Paces[0].Delivered, full*rate)
	}
	if _, err := os.Stat(filepath.Join(runDir, results.OpenSecondsFile)); err == nil {
		t.Error("the open seconds are still there after cleanup")
	}
	if code, stdout, stderr := runCLI("plot", runDir); code != exitOK {
		t.Errorf("plot: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(runDir, "timeline.png")); err != nil {
		t.Error(err)
	}
}

// measureStart waits until the run's measure load has written its pace
// steps and returns when its first one starts.
func measureStart(t *testing.T, root string) time.Time {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if dirs := runDirs(t, root); len(dirs) == 1 {
			var saved struct {
				Steps []struct {
					Span results.Span `json:"span"`
				} `json:"steps"`
			}
			if data, err := os.ReadFile(filepath.Join(dirs[0], results.DigestsFile)); err == nil && json.Unmarshal(data, &saved) == nil {
				for _, s := range saved.Steps {
					if s.Span.Phase == "measure" {
						return s.Span.Start
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the measure load did not start")
	return time.Time{}
}

func readSummary(t *testing.T, dir string) results.Summary {
	t.Helper()
	sum, err := results.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// measureRows returns the intended count of each measure row of
// timeline.tsv, in order.
func measureRows(t *testing.T, dir string) []int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, results.TimelineFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []int64
	sc := bufio.NewScanner(f)
	var phaseCol, intendedCol int
	for first := true; sc.Scan(); first = false {
		fields := strings.Split(sc.Text(), "\t")
		if first {
			for i, name := range fields {
				switch name {
				case "phase":
					phaseCol = i
				case "intended":
					intendedCol = i
				}
			}
			continue
		}
		if fields[phaseCol] == "measure" {
			n, _ := strconv.ParseInt(fields[intendedCol], 10, 64)
			rows = append(rows, n)
		}
	}
	return rows
}
