package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/matrix"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
)

// writeMatrix writes a matrix file over the shipped direct and channel-imc
// scenarios and returns its path.
func writeMatrix(t *testing.T, dir, paces string, reps int) string {
	t.Helper()
	scen, err := filepath.Abs("../../scenarios")
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`name: small
scenarios:
  - %s/direct.yaml
  - %s/channel-imc.yaml
paces: [%s]
repetitions: %d
set:
  warmupPace: "200:1"
`, scen, scen, paces, reps)
	file := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// matrixDir returns the one matrix run directory under out.
func matrixDir(t *testing.T, out string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, "matrix", "small", "*"))
	if len(dirs) != 1 {
		t.Fatalf("matrix directories: %v", dirs)
	}
	return dirs[0]
}

// 2 scenarios × 2 paces × 2 repetitions: eight cells, each with its own run
// (its own installs and teardown), an index with every cell's figures, a
// summary with the spread over repetitions, and graphs across cells.
func TestMatrixRunsEveryCell(t *testing.T) {
	if testing.Short() {
		t.Skip("runs eight cells")
	}
	tmp := t.TempDir()
	file := writeMatrix(t, tmp, `"200:1", "300:1"`, 2)
	out := filepath.Join(tmp, "results")
	code, stdout, stderr := runCLI("matrix", file, "--out", out, "--lock-dir", tmp)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	dir := matrixDir(t, out)
	ix, err := matrix.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Cells) != 8 {
		t.Fatalf("%d cells", len(ix.Cells))
	}
	seen := map[string]bool{}
	for _, c := range ix.Cells {
		// The figures reach the index. (Not the sustained rate: a one-second
		// step that a busy machine starts late is judged not held, and
		// its sustained rate is then 0, rightly.)
		if c.Status != matrix.Succeeded || c.RunDir == "" || seen[c.RunDir] || len(c.Steps) == 0 || c.Steps[0].TargetRPS == 0 || c.Steps[0].DeliveredRPS == 0 || c.Steps[0].Verdict == "" || c.Steps[0].CPUPerEventUS == nil {
			t.Errorf("cell %s: %s in %q, steps %+v", c.ID, c.Status, c.RunDir, c.Steps)
			continue
		}
		seen[c.RunDir] = true
		rec, err := engine.ReadRunRecord(filepath.Join(dir, c.RunDir))
		if err != nil {
			t.Fatal(err)
		}
		installs := 0
		for _, s := range rec.Steps {
			if s.Kind == "helm.install" && s.Status == "succeeded" {
				installs++
			}
		}
		if installs == 0 {
			t.Errorf("cell %s installed nothing of its own", c.ID)
		}
		if pending, _ := engine.Pending(filepath.Join(dir, c.RunDir)); len(pending) != 0 {
			t.Errorf("cell %s left %v", c.ID, pending)
		}
	}
	sum, err := os.ReadFile(filepath.Join(dir, matrix.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| direct | 200:1 | 2/2 |", "| channel-imc | 300:1 | 2/2 |", "CV ", "Differences against the noise", "CPU per event (µs)", "- CPU per event, direct vs channel-imc"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	for _, line := range strings.Split(string(sum), "\n") {
		if strings.HasPrefix(line, "| direct |") || strings.HasPrefix(line, "| channel-imc |") {
			if strings.Contains(line, "| – |") {
				t.Errorf("a group has no latency at its compared step: %s", line)
			}
		}
	}
	if os.Getenv("RUNNER_REQUIRE_GNUPLOT") == "1" {
		for _, img := range []string{"sustained.png", "e2e.png"} {
			if _, err := os.Stat(filepath.Join(dir, img)); err != nil {
				t.Errorf("graph not rendered: %v", err)
			}
		}
	}
	// History sees the eight runs, two per scenario and pace.
	code, stdout, stderr = runCLI("history", out)
	if code != exitOK || strings.Count(stdout, "| succeeded |") != 8 || !strings.Contains(stdout, "## direct · pace-200x1 · local") {
		t.Errorf("history: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// --pace-override runs every cell at the pace given, warmups included, and
// names the cells after it; run.json and report.md say that the warmups did
// not run at the pace of their variables.
func TestMatrixPaceOverride(t *testing.T) {
	tmp := t.TempDir()
	file := writeMatrix(t, tmp, `"200:1"`, 1)
	out := filepath.Join(tmp, "results")
	code, stdout, stderr := runCLI("matrix", file, "--pace-override", "300:1", "--out", out, "--lock-dir", tmp)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	dir := matrixDir(t, out)
	ix, err := matrix.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Cells) != 2 {
		t.Fatalf("%d cells", len(ix.Cells))
	}
	for _, c := range ix.Cells {
		if c.PaceSet != "pace-300x1" || c.Status != matrix.Succeeded {
			t.Errorf("cell %s: pace set %q, %s", c.ID, c.PaceSet, c.Status)
			continue
		}
		run := filepath.Join(dir, c.RunDir)
		rec, err := engine.ReadRunRecord(run)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := results.ReadSummary(run)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Context == nil || rec.Context.WarmupPace != "300:1" || rec.Vars["warmupPace"] != "200:1" || sum.Warmup == nil || len(sum.Warmup.Paces) != 1 || sum.Warmup.Paces[0].TargetRPS != 300 {
			t.Errorf("cell %s: context %+v, vars %v, warmup %+v", c.ID, rec.Context, rec.Vars, sum.Warmup)
		}
		if md, _ := os.ReadFile(filepath.Join(run, "report.md")); !strings.Contains(string(md), "- Warmups at `300:1` (--pace-override), not at the pace their variables give\n") {
			t.Errorf("cell %s: report.md does not say the warmups were overridden:\n%s", c.ID, md)
		}
	}
}

// A matrix killed mid-cell is resumed: done cells are not run again, the
// killed cell is cleaned up and rerun. While it runs, a second matrix on the
// same target is refused.
func TestMatrixKilledThenResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a matrix twice")
	}
	tmp := t.TempDir()
	file := writeMatrix(t, tmp, `"200:3"`, 1)
	out := filepath.Join(tmp, "results")
	cmd, output := startCLI(t, "matrix", file, "--out", out, "--lock-dir", tmp)
	// Wait for the second cell to be running.
	var dir string
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the second cell never started:\n%s", output)
		}
		if dirs, _ := filepath.Glob(filepath.Join(out, "matrix", "small", "*")); len(dirs) == 1 {
			dir = dirs[0]
			// Killed once the cell installed something, so that the
			// cleanup has something to undo.
			if ix, err := matrix.ReadIndex(dir); err == nil && ix.Cells[1].Status == matrix.Running && ix.Cells[1].RunDir != "" {
				if pending, _ := engine.Pending(filepath.Join(dir, ix.Cells[1].RunDir)); len(pending) > 0 {
					break
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, stdout, stderr := runCLI("matrix", file, "--out", out, "--lock-dir", tmp)
	if code != exitBadInput || !strings.Contains(stderr, "another matrix is running on target local") {
		t.Errorf("second matrix: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before, err := matrix.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if before.Cells[0].Status != matrix.Succeeded || before.Cells[1].Status != matrix.Running {
		t.Fatalf("after the kill: %s, %s", before.Cells[0].Status, before.Cells[1].Status)
	}
	code, stdout, stderr = runCLI("matrix", "--resume", dir, "--lock-dir", tmp)
	if code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", code, stdout, stderr)
	}
	after, err := matrix.ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, second := after.Cells[0], after.Cells[1]
	if first.Attempts != 1 || first.RunDir != before.Cells[0].RunDir || !first.End.Equal(*before.Cells[0].End) {
		t.Errorf("the finished cell ran again: %+v", first)
	}
	if second.Status != matrix.Succeeded || second.Attempts != 2 || second.RunDir == before.Cells[1].RunDir {
		t.Errorf("the killed cell: %s, %d attempts, in %s (was %s)", second.Status, second.Attempts, second.RunDir, before.Cells[1].RunDir)
	}
	killed := filepath.Join(dir, before.Cells[1].RunDir)
	if pending, err := engine.Pending(killed); err != nil || len(pending) != 0 {
		t.Errorf("the killed cell's run still holds %v (%v)", pending, err)
	}
	if rec, err := engine.ReadRunRecord(killed); err != nil || len(rec.Undone) == 0 {
		t.Errorf("the killed cell's run records no undo: %v", err)
	}
	if len(second.Earlier) != 1 || second.Earlier[0] != before.Cells[1].RunDir {
		t.Errorf("the killed run is not kept in the index: %v", second.Earlier)
	}
	if !strings.Contains(stdout, "finishing the teardown of its earlier run") {
		t.Errorf("resume did not say it cleaned up:\n%s", stdout)
	}
}

// The shipped matrix of the 2019 report validates: twelve cells, or six
// under a pace override, each named after the pace it runs, its warmup
// running that pace too unless the scenario's own is kept.
func TestShippedMatrix(t *testing.T) {
	m, err := matrix.Load("../../scenarios/matrix-2019.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Cells("")); n != 12 {
		t.Errorf("%d cells, want 12", n)
	}
	cells := m.Cells("500:2")
	if len(cells) != 6 || cells[0].ID != "direct/pace-500x2/r1" || cells[0].PaceSet != "pace-500x2" || cells[0].WarmupPace != "500:2" {
		t.Errorf("cells under a pace override: %+v", cells)
	}
	sc, err := scenario.Load(cells[0].File, scenario.Options{Pace: "500:2", WarmupPace: cells[0].WarmupPace})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := sc.Steps[scenario.Warmup][0].Spec.(*steps.Load); !ok || l.Pace != "500:2" {
		t.Errorf("the warmup's pace under the override: %+v", sc.Steps[scenario.Warmup][0].Spec)
	}
	m.KeepWarmup = true
	if c := m.Cells("500:2")[0]; c.WarmupPace != "" {
		t.Errorf("--keep-warmup: the warmup runs %q", c.WarmupPace)
	}
	committed, err := os.ReadFile("../../matrix.schema.json")
	if err != nil || string(committed) != string(matrix.Schema()) {
		t.Error("matrix.schema.json is out of date; run make schema")
	}
}

// history --check exits 3 on a planted regression.
func TestHistoryCheckExits3OnRegression(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i, sus := range []float64{2000, 2000, 1500} {
		dir := filepath.Join(root, fmt.Sprintf("r%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, engine.RunFile), []byte(fmt.Sprintf(`{"scenario":"s","pace_set":"1k-2k","target":"local","start":%q,"status":"succeeded"}`, t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339))), 0o644)
		_ = os.WriteFile(filepath.Join(dir, "summary.json"), []byte(fmt.Sprintf(`{"schema":"runner.summary/v1","sustained_rps":%g,"paces":[{"target_rps":1000}],"totals":{"e2e_ms":{"p9999":5}}}`, sus)), 0o644)
	}
	code, stdout, stderr := runCLI("history", root, "--check", "--tolerance", "10%")
	if code != exitThreshold || !strings.Contains(stderr, "regression: s · 1k-2k · local: sustained events/s 1500 against a baseline of 2000 (-25.0%)") {
		t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI("history", root, "--check", "--tolerance", "30%")
	if code != exitOK {
		t.Errorf("within 30%%: exit %d %s", code, stderr)
	}
}
