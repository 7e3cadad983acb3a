package results

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

var dispatcher = ContainerRef{Group: GroupSUT, Namespace: "knative-eventing", Pod: "imc-dispatcher-1", Container: "dispatcher"}

// readings feeds a container's cumulative CPU (cores × seconds) at times
// ats into a set.
func readings(rs *ResourceSet, c ContainerRef, ats, cpu, mem []float64) {
	for i := range ats {
		rs.Add(ats[i], ResourceSample{ContainerRef: c, CPUSeconds: cpu[i], MemoryBytes: mem[i]})
	}
}

func TestResourcesOverAStepInterpolateBetweenReadings(t *testing.T) {
	rs := NewResourceSet()
	// Readings every 10 s, as a kubelet refreshes cAdvisor's: 0.5 cores
	// from -3 s to 7 s, then 1 core; memory 100 MiB growing to 130.
	readings(rs, dispatcher, []float64{-3, 7, 17, 27}, []float64{0, 5, 15, 25}, []float64{100 * mib, 110 * mib, 120 * mib, 130 * mib})
	res := rs.Over(0, 10, 1000)
	if res == nil || len(res.Containers) != 1 || len(res.Groups) != 1 {
		t.Fatalf("figures %+v", res)
	}
	f := res.Containers[0]
	// 0 → 7 s at 0.5 cores, 7 → 10 s at 1 core: 3.5 + 3 = 6.5 CPU seconds.
	if !near(f.CPUSeconds, 6.5) || !near(f.CPUCores, 0.65) || f.CPUPerEventUS == nil || !near(*f.CPUPerEventUS, 6500) {
		t.Errorf("cpu %+v (per event %v), want 6.5 s, 0.65 cores, 6500 µs", f, *f.CPUPerEventUS)
	}
	if !near(f.MemoryMiB, 110) || !near(f.MemoryGrowthMiB, 10) || f.Coverage != 1 {
		t.Errorf("memory %v MiB, growth %v, coverage %v; want 110, 10 (the readings at 7 and -3 s), 1", f.MemoryMiB, f.MemoryGrowthMiB, f.Coverage)
	}
	if g := res.Group(GroupSUT); g == nil || g.Containers != 1 || !near(g.CPUSeconds, 6.5) || res.Observed() != g {
		t.Errorf("group %+v", g)
	}
	// No event: no CPU per event, rather than an infinite one.
	if f := rs.Over(0, 10, 0).Containers[0]; f.CPUPerEventUS != nil {
		t.Errorf("per event with no event: %v", *f.CPUPerEventUS)
	}
}

func TestResourcesCoverage(t *testing.T) {
	rs := NewResourceSet()
	readings(rs, dispatcher, []float64{4, 5, 6, 7}, []float64{1, 2, 3, 4}, []float64{1, 1, 1, 1})
	// Readings span 3 of the step's 10 s: too little to judge it by.
	if res := rs.Over(0, 10, 100); res != nil {
		t.Errorf("figures from 30%% of a step: %+v", res)
	}
	// They span 3 of 5 s: the rate over them, over the whole step.
	res := rs.Over(3, 8, 100)
	if res == nil || !near(res.Containers[0].CPUSeconds, 5) || !near(res.Containers[0].Coverage, 0.6) {
		t.Errorf("figures %+v, want 5 CPU seconds (1 core over 5 s) at coverage 0.6", res)
	}
}

func TestResourcesCounterResetIsARestart(t *testing.T) {
	rs := NewResourceSet()
	// The container restarts between 2 and 3 s: its counter starts again.
	readings(rs, dispatcher, []float64{0, 1, 2, 3, 4}, []float64{10, 11, 12, 0.5, 1.5}, []float64{1, 1, 1, 1, 1})
	res := rs.Over(0, 4, 4)
	if !near(res.Containers[0].CPUSeconds, 3.5) {
		t.Errorf("cpu %v across a restart, want 3.5 (2 before, 0.5 at the restart, 1 after)", res.Containers[0].CPUSeconds)
	}
	// A reading repeated (a kubelet's cached one) changes nothing.
	rs.Add(4, ResourceSample{ContainerRef: dispatcher, CPUSeconds: 99})
	if res := rs.Over(0, 4, 4); !near(res.Containers[0].CPUSeconds, 3.5) {
		t.Errorf("a repeated reading changed the figures: %v", res.Containers[0].CPUSeconds)
	}
}

func TestResourcesGroupsAndSeconds(t *testing.T) {
	rs := NewResourceSet()
	agent := ContainerRef{Group: GroupAgents, Namespace: "perf", Pod: "perf-agents-0", Container: "agent"}
	controller := ContainerRef{Group: GroupSUT, Namespace: "knative-eventing", Pod: "eventing-controller-1", Container: "controller"}
	ats := []float64{0, 1, 2, 3}
	readings(rs, dispatcher, ats, []float64{0, 1, 2, 3}, []float64{mib, mib, mib, mib})
	readings(rs, controller, ats, []float64{0, 0.5, 1, 1.5}, []float64{2 * mib, 2 * mib, 2 * mib, 2 * mib})
	readings(rs, agent, ats, []float64{0, 0.25, 0.5, 0.75}, []float64{4 * mib, 4 * mib, 4 * mib, 4 * mib})
	res := rs.Over(0, 3, 300)
	if len(res.Groups) != 2 || res.Groups[0].Group != GroupSUT || res.Groups[1].Group != GroupAgents {
		t.Fatalf("groups %+v, want sut then agents", res.Groups)
	}
	sut := res.Groups[0]
	if !near(sut.CPUCores, 1.5) || !near(*sut.CPUPerEventUS, 15000) || !near(sut.MemoryMiB, 3) || sut.Containers != 2 {
		t.Errorf("sut %+v", sut)
	}
	// The busiest container first; the agents' one alone says nothing more
	// than its group.
	notable := res.Notable(0.05, 5)
	var labels []string
	for _, f := range notable {
		labels = append(labels, f.Label())
	}
	want := "systems under test (2 containers)|agents|knative-eventing/imc-dispatcher-1/dispatcher|knative-eventing/eventing-controller-1/controller"
	if strings.Join(labels, "|") != want {
		t.Errorf("notable %q, want %q", strings.Join(labels, "|"), want)
	}
	sec := rs.Second(1)
	if c := sec[GroupSUT].CPUCores; c == nil || !near(*c, 1.5) {
		t.Errorf("second 1: sut %+v", sec[GroupSUT])
	}
	if m := sec[GroupAgents].MemoryMiB; m == nil || !near(*m, 4) {
		t.Errorf("second 1: agents %+v", sec[GroupAgents])
	}
	if len(rs.Second(10)) != 0 {
		t.Errorf("a second no reading covers has figures: %+v", rs.Second(10))
	}
	// A phase of two steps: CPU and events added up.
	phase := mergeResources([]*Resources{rs.Over(0, 1, 100), rs.Over(1, 3, 200)}, 3, 300)
	if g := phase.Group(GroupSUT); !near(g.CPUSeconds, 4.5) || !near(*g.CPUPerEventUS, 15000) || !near(g.CPUCores, 1.5) {
		t.Errorf("phase sut %+v", g)
	}
}

func TestResourceThresholds(t *testing.T) {
	us := 250.0
	step := StepSummary{TargetRPS: 1000, Verdict: "held", Resources: &Resources{Groups: []ResourceFigures{
		{ContainerRef: ContainerRef{Group: GroupSUT}, CPUCores: 0.25, CPUPerEventUS: &us, MemoryMiB: 300, MemoryGrowthMiB: 12},
	}}}
	bare := StepSummary{TargetRPS: 2000, Verdict: "held"}
	sum := Summary{Paces: []StepSummary{step, bare}, Totals: PhaseSummary{Resources: step.Resources}}
	for _, tt := range []struct{ text, want string }{
		{"cpu_per_event_us < 300", "step 2 (2000/s):not measured"},
		{"cpu_per_event_us < 200 per step", "step 1 (1000/s):250.0 µs|step 2 (2000/s):not measured"},
		{"cpu_cores <= 0.25", ""},
		{"memory_growth_mib < 10", "run:12.0 MiB"},
		{"memory_mib < 512 per step", "step 2 (2000/s):not measured"},
	} {
		th, err := ParseThreshold(tt.text)
		if err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		if !th.PerStep() {
			// Over the run: step 2 is not judged.
			sum.Paces = []StepSummary{step}
		}
		var got []string
		for _, b := range Evaluate([]Threshold{th}, sum) {
			if b.NotMeasured {
				got = append(got, b.Scope+":not measured")
				if _, err := json.Marshal(b); err != nil {
					t.Errorf("breach not encodable: %v", err)
				}
				continue
			}
			got = append(got, b.Scope+":"+strings.TrimPrefix(strings.SplitN(b.String(), ": ", 2)[1], ""))
		}
		want := tt.want
		if !th.PerStep() && strings.Contains(want, "step 2") {
			want = ""
		}
		if strings.Join(got, "|") != want {
			t.Errorf("%s: %q, want %q", tt.text, strings.Join(got, "|"), want)
		}
		sum.Paces = []StepSummary{step, bare}
	}
	// A per-step one breaks the step it breaches, saying why.
	th, _ := ParseThreshold("cpu_per_event_us < 200 per step")
	if v, reason, _ := judge(step, []Threshold{th}); v != "broken" || !strings.Contains(reason, "cpu_per_event_us < 200 per step (250.0 µs)") {
		t.Errorf("verdict %s: %s", v, reason)
	}
	if v, reason, _ := judge(bare, []Threshold{th}); v != "broken" || !strings.Contains(reason, "(not measured)") {
		t.Errorf("verdict without readings %s: %s", v, reason)
	}
}

func TestRecorderWritesResourcesAndTimeline(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecorder(dir, Meta{Scenario: "s", PaceSet: "p", Target: "local"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_800_000_000, 0)
	// A reading before the first step began has no place on the timeline.
	before := ResourceSample{ContainerRef: dispatcher, At: start.Add(-5 * time.Second), CPUSeconds: 0}
	if err := rec.AddResources([]ResourceSample{before}); err != nil {
		t.Fatal(err)
	}
	rec.BeginStep(Span{Phase: "measure", TargetRPS: 10, Start: start, Duration: 3 * time.Second})
	for i := range 3 {
		at := start.Add(time.Duration(i) * time.Second)
		ti := at.UnixNano()
		for range 10 {
			rec.Intended(ti)
			rec.SendDone(ti, ti, ti+1e6, true)
			rec.Delivered(ti, ti+2e6, false)
		}
	}
	for i := range 5 {
		s := ResourceSample{ContainerRef: dispatcher, At: start.Add(time.Duration(i)*time.Second - 500*time.Millisecond), CPUSeconds: 0.2 * float64(i), MemoryBytes: 64 * mib}
		if err := rec.AddResources([]ResourceSample{s}); err != nil {
			t.Fatal(err)
		}
	}
	rec.SetResourceInfo(ResourceInfo{Source: "test readings"})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := sum.Paces[0].Resources.Group(GroupSUT)
	if sum.Resources == nil || sum.Resources.Source != "test readings" || g == nil || !near(g.CPUCores, 0.2) || math.Abs(*g.CPUPerEventUS-20000) > 1e-6 {
		t.Fatalf("summary resources %+v, step %+v", sum.Resources, g)
	}
	if tg := sum.Totals.Resources.Group(GroupSUT); tg == nil || !near(tg.CPUSeconds, g.CPUSeconds) {
		t.Errorf("totals %+v", sum.Totals.Resources)
	}
	// The readings on disk give the same figures again.
	rs, err := ReadResources(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again := rs.Over(0, 3, 30).Group(GroupSUT); !near(again.CPUSeconds, g.CPUSeconds) {
		t.Errorf("figures from %s: %+v, want %+v", ResourcesFile, again, g)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ResourcesFile))
	if lines := strings.Count(string(data), "\n"); lines != 6 {
		t.Errorf("%s has %d lines, want a header and 5 readings:\n%s", ResourcesFile, lines, data)
	}
	tl, _ := os.ReadFile(filepath.Join(dir, TimelineFile))
	rows := strings.Split(strings.TrimSpace(string(tl)), "\n")
	header := strings.Split(rows[0], "\t")
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	row := strings.Split(rows[2], "\t") // second 1
	if row[col["sut_cpu_cores"]] != "0.200" || row[col["sut_memory_mib"]] != "64.000" || row[col["runner_cpu_cores"]] != "NaN" {
		t.Errorf("timeline second 1: sut %s cores %s MiB, runner %s", row[col["sut_cpu_cores"]], row[col["sut_memory_mib"]], row[col["runner_cpu_cores"]])
	}
}
