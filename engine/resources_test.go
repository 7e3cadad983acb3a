package engine

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
)

// runnerCPU runs channel-imc on local with sets and returns its measured
// step's CPU per event of the runner's process, and the run directory.
func runnerCPU(t *testing.T, rps float64, sets ...string) (float64, string) {
	t.Helper()
	dir, err := runFile(t, filepath.Join("..", "scenarios", "channel-imc.yaml"), scenario.Options{
		Pace: fmt.Sprintf("%g:4", rps),
		Set:  append([]string{fmt.Sprintf("warmupPace=%g:1", rps)}, sets...),
	})
	if err != nil {
		t.Fatalf("run %v: %v", sets, err)
	}
	sum, err := results.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resources == nil || !strings.Contains(sum.Resources.Source, "runner's own process") {
		t.Fatalf("resources %+v: want the runner's own process", sum.Resources)
	}
	f := sum.Paces[0].Resources.Observed()
	if f == nil || f.Group != results.GroupRunner || f.CPUPerEventUS == nil || f.Coverage < 0.9 {
		t.Fatalf("run %v: figures %+v", sets, f)
	}
	t.Logf("%v: %.3f cores, %.1f µs per event, %.1f MiB", sets, f.CPUCores, *f.CPUPerEventUS, f.MemoryMiB)
	return *f.CPUPerEventUS, dir
}

// On local the runner's own process is what is measured, the twin in it:
// a twin's added latency costs no CPU to speak of, a twin whose every
// event costs CPU shows that cost in CPU per event, and a CPU profile
// taken during the step finds it.
func TestCPUPerEventFollowsTheTwinsCost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three loads")
	}
	rps := 200.0
	if raceEnabled {
		rps = 100
	}
	const burn = 2000.0 // µs of CPU per event
	plain, _ := runnerCPU(t, rps)
	delayed, _ := runnerCPU(t, rps, "latency=5ms")
	costly, dir := runnerCPU(t, rps, fmt.Sprintf("cpu=%gus", burn), "profileStep=1", "profileSeconds=2")
	// Two cores shared with everything else: the same run twice differs
	// by up to a third here.
	if ratio := delayed / plain; ratio < 1/1.6 || ratio > 1.6 {
		t.Errorf("CPU per event %.1f µs with 5 ms of added latency against %.1f µs without: the latency knob should cost no CPU", delayed, plain)
	}
	// Threads that burn 2 ms each on two shared cores, and the profile
	// taken meanwhile, cost the Go runtime too: the difference measured
	// here ranged from the burn to a sixth above it (2330 µs).
	if d := costly - plain; d < 0.7*burn || d > 1.25*burn+0.6*plain {
		t.Errorf("CPU per event %.1f µs with a twin costing %g µs per event, %.1f µs without: the difference (%.1f µs) should be the twin's cost", costly, burn, plain, d)
	}
	// The profile of the runner during the step shows where the CPU went.
	prof := filepath.Join(dir, "profiles", fmt.Sprintf("runner.step1-%grps.cpu.pprof", rps))
	out, err := exec.Command("go", "tool", "pprof", "-top", prof).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top %s: %v\n%s", prof, err, out)
	}
	if !strings.Contains(string(out), "twins.burn") {
		t.Errorf("the CPU profile does not show the twin's burn:\n%s", out)
	}
	heap := filepath.Join(dir, "profiles", fmt.Sprintf("runner.step1-%grps.heap.pprof", rps))
	if out, err := exec.Command("go", "tool", "pprof", "-top", heap).CombinedOutput(); err != nil {
		t.Errorf("go tool pprof -top %s: %v\n%s", heap, err, out)
	}
}
