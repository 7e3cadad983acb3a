package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/results"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// advance moves the clock to t, firing the timers due by then.
func (c *fakeClock) advance(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waiting waits until the scheduler waits on the clock.
func (c *fakeClock) waiting(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.waiters)
		c.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the scheduler never waited on the clock")
}

// A run that comes due while the last is still going is skipped and said
// so; the next one after it finished starts.
func TestSchedulerNeverOverlaps(t *testing.T) {
	start := time.Date(2026, 11, 27, 2, 59, 30, 0, time.UTC)
	clock := &fakeClock{now: start}
	release := make(chan struct{})
	started := make(chan time.Time, 10)
	var mu sync.Mutex
	var said []string
	s := &Scheduler{
		Spec:  "0 3 * * *",
		Clock: clock,
		Say:   func(l string) { mu.Lock(); said = append(said, l); mu.Unlock() },
		Job: func(ctx context.Context) error {
			started <- clock.Now()
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	day1 := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	clock.waiting(t)
	clock.advance(day1)
	if got := <-started; !got.Equal(day1) {
		t.Fatalf("first run started at %s", got)
	}
	// Day 2 comes while day 1's run is still going.
	clock.waiting(t)
	clock.advance(day1.Add(24 * time.Hour))
	clock.waiting(t)
	select {
	case got := <-started:
		t.Fatalf("a second run started at %s while the first was going", got)
	default:
	}
	release <- struct{}{}
	time.Sleep(20 * time.Millisecond) // the first run returns
	clock.advance(day1.Add(48 * time.Hour))
	select {
	case got := <-started:
		if !got.Equal(day1.Add(48 * time.Hour)) {
			t.Errorf("third run started at %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the run of day 3 never started")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(said, "\n")
	if !strings.Contains(joined, "run due at 2026-11-28T03:00:00Z skipped: the previous run is still going") {
		t.Errorf("the skip was not said:\n%s", joined)
	}
}

func TestParseScheduleRefusesNonsense(t *testing.T) {
	for _, bad := range []string{"", "every day", "61 * * * *", "* * * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseSchedule("@every 6h"); err != nil {
		t.Error(err)
	}
}

func TestSpread(t *testing.T) {
	s := spread([]float64{1400, 1300, 1500})
	if s.N != 3 || s.Min != 1300 || s.Median != 1400 || s.Max != 1500 || s.CV < 0.0714 || s.CV > 0.0715 {
		t.Errorf("%+v", s)
	}
	if s := spread([]float64{1, 2, 3, 4}); s.Median != 2.5 {
		t.Errorf("median of 1..4: %g", s.Median)
	}
}

// Pairs of systems with repetitions are judged against their noise; pairs
// that ran once each are only counted, not listed one line each.
func TestComparisonsJudgeOnlyRepeatedPairs(t *testing.T) {
	g := func(label, pace string, sustained ...float64) Group {
		return Group{Label: label, PaceSet: pace, Runs: len(sustained), Sustained: spread(sustained)}
	}
	lines, once := comparisons([]Group{
		g("direct", "1k-2k", 1500, 1600), g("channel-imc", "1k-2k", 1000, 1050), g("broker-imc", "1k-2k", 1520, 1580),
		g("direct", "1k-long", 1000), g("channel-imc", "1k-long", 1000), g("broker-imc", "1k-long", 900),
	})
	want := "- sustained, direct vs channel-imc (1k-2k): sustained 1550 vs 1025 events/s, difference 525, noise 100: a real difference\n" +
		"- sustained, direct vs broker-imc (1k-2k): sustained 1550 vs 1550 events/s, difference 0, noise 100: within the noise\n" +
		"- sustained, channel-imc vs broker-imc (1k-2k): sustained 1025 vs 1550 events/s, difference 525, noise 60: a real difference\n"
	if lines != want || once != 3 {
		t.Errorf("comparisons: %d pairs ran once, lines:\n%s\nwant 3 and:\n%s", once, lines, want)
	}
}

// pastRun writes a finished run's run.json and summary.json under root.
func pastRun(t *testing.T, root, scenario string, start time.Time, sustained, e2e float64) string {
	return pastRunWith(t, root, scenario, start, sustained, e2e, "succeeded", nil)
}

func pastRunWith(t *testing.T, root, scenario string, start time.Time, sustained, e2e float64, status string, vars map[string]any) string {
	t.Helper()
	dir := filepath.Join(root, scenario, "1k-2k", start.Format("20060102T150405Z")+fmt.Sprint(len(vars)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, v any) {
		b, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(engine.RunFile, engine.RunRecord{Schema: "runner.run/v1", Scenario: scenario, PaceSet: "1k-2k", Target: "local", Start: start, Status: status, Vars: vars})
	sum := results.Summary{Schema: "runner.summary/v1", SustainedRPS: sustained, Scenario: scenario, PaceSet: "1k-2k",
		Paces: []results.StepSummary{{TargetRPS: 1000, Verdict: "held"}}}
	if !math.IsNaN(e2e) { // NaN: a send-only run, which delivers nothing
		sum.Totals.E2EMS = results.Quantiles{P9999: e2e, Count: 1000}
	}
	write("summary.json", sum)
	return dir
}

// The newest run is compared with the median of the runs before it: a fall
// in sustained rate beyond the tolerance is a regression, a small wobble
// is not.
func TestHistoryCheck(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i, sus := range []float64{1900, 2000, 1900, 1800} {
		pastRun(t, root, "channel-kafka", t0.Add(time.Duration(i)*24*time.Hour), sus, 10)
	}
	newest := pastRun(t, root, "channel-kafka", t0.Add(4*24*time.Hour), 1500, 10.5)
	for i := range 3 {
		pastRun(t, root, "channel-imc", t0.Add(time.Duration(i)*24*time.Hour), 2000, 5)
	}
	pastRun(t, root, "channel-imc", t0.Add(3*24*time.Hour), 1950, 5.2)
	runs, err := History(root)
	if err != nil || len(runs) != 9 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	regs, _ := Check(runs, 3, "", 0.1)
	if len(regs) != 1 || regs[0].Run.Dir != newest || regs[0].Figure != "sustained events/s" || regs[0].Baseline != 1900 {
		t.Fatalf("regressions %v", regs)
	}
	// Against the first run (1900) pinned, the newest regresses too; the
	// other scenario is said to be unchecked.
	first := filepath.Join(root, "channel-kafka", "1k-2k", t0.Format("20060102T150405Z")+"0")
	regs, notes := Check(runs, 3, first, 0.1)
	if len(regs) != 1 || regs[0].Baseline != 1900 {
		t.Errorf("against the pinned run: %v", regs)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "channel-imc · 1k-2k · local: not checked") {
		t.Errorf("notes: %v", notes)
	}
	md, images, err := WriteHistory(filepath.Join(root, "history"), runs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "## channel-kafka · 1k-2k · local") || strings.Count(md, "| succeeded |") != 9 {
		t.Errorf("history table:\n%s", md)
	}
	requireRendered(t, images, 1)
}

// requireRendered fails when gnuplot is required (CI) and did not render
// n images.
func requireRendered(t *testing.T, images []string, n int) {
	t.Helper()
	if os.Getenv("RUNNER_REQUIRE_GNUPLOT") == "1" && len(images) != n {
		t.Errorf("rendered %v, want %d images", images, n)
	}
}

// A run that breached its thresholds is history too (it is often the
// regression), and runs with other variables are another series.
func TestHistoryKeepsBreachedRunsAndSeparatesVariables(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i := range 3 {
		pastRunWith(t, root, "s", t0.Add(time.Duration(i)*time.Hour), 2000, 5, "succeeded", map[string]any{"partitions": 100})
		pastRunWith(t, root, "s", t0.Add(time.Duration(i)*time.Hour+time.Minute), 1000, 9, "succeeded", map[string]any{"partitions": 10})
	}
	pastRunWith(t, root, "s", t0.Add(5*time.Hour), 1200, 5, "thresholds-breached", map[string]any{"partitions": 100})
	runs, err := History(root)
	if err != nil || len(runs) != 7 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	regs, _ := Check(runs, 5, "", 0.1)
	if len(regs) != 1 || regs[0].Run.Label != "s · 1k-2k · local · partitions=100" || regs[0].Baseline != 2000 {
		t.Fatalf("regressions %v", regs)
	}
	// history.md heads each series with the label of the trend's key,
	// and lists its variables below.
	md, _, err := WriteHistory(filepath.Join(root, "history"), runs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## s · 1k-2k · local · partitions=10\n\nVariables: `partitions=10`.\n\n| start", "## s · 1k-2k · local · partitions=100\n\nVariables: `partitions=100`.\n\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("history.md lacks %q:\n%s", want, md)
		}
	}
}

func TestLoadReportsProblemsWithPositions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	src := "name: m\nscenarios: [nothing-*.yaml]\npaces: [\"1k-2k\", \"x:y\"]\nrepetitons: 2\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file, "")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{file + ":4:1: unknown key \"repetitons\" (did you mean \"repetitions\"?)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	src = "name: m\nscenarios: [nothing-*.yaml]\npaces: [\"1k-2k\", \"x:y\"]\n"
	_ = os.WriteFile(file, []byte(src), 0o644)
	_, err = Load(file, "")
	for _, want := range []string{file + `:2:13: "nothing-*.yaml" matches no scenario file`, file + `:3:18: "x:y" is neither a pace set's name nor a pace`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	src = "name: m\nscenarios: [nothing-*.yaml]\npaces: [\"1k-2k\"]\nrestart: {namespace: knative-eventing, deployments: [a], selector: x=y}\n"
	_ = os.WriteFile(file, []byte(src), 0o644)
	_, err = Load(file, "")
	if want := file + ":4:10: restart: deployments: give deployments or a selector"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
}

// A send-only run has no end-to-end latency: the history says so rather
// than 0, and the baseline of a later run leaves it out.
func TestHistoryOfSendOnlyRuns(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	pastRun(t, root, "url", t0, 2000, math.NaN())
	pastRun(t, root, "url", t0.Add(24*time.Hour), 2000, 8)
	pastRun(t, root, "url", t0.Add(48*time.Hour), 2000, 10)
	runs, err := History(root)
	if err != nil || len(runs) != 3 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	regs, notes := Check(runs, 3, "", 0.1)
	if len(regs) != 1 || regs[0].Figure != "p99.99 end-to-end ms" || regs[0].Baseline != 8 {
		t.Errorf("regressions %v (notes %v): the send-only run must not count as a baseline of 0", regs, notes)
	}
	md, images, err := WriteHistory(filepath.Join(root, "history"), runs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "| 2000 | — |") || strings.Contains(md, "| 0.00 |") {
		t.Errorf("history table:\n%s", md)
	}
	requireRendered(t, images, 1)
}

// Latencies two decades apart share the trend's panel on a log scale with
// 1-2-5 tics; within a decade the axis stays linear from 0.
func TestTrendLatencyScale(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i := range 2 {
		pastRunWith(t, root, "s", t0.Add(time.Duration(i)*time.Hour), 200, 104, "succeeded", map[string]any{"capacity": 400})
		pastRunWith(t, root, "s", t0.Add(time.Duration(i)*time.Hour+time.Minute), 900, 1.6, "succeeded", map[string]any{"capacity": 0})
	}
	runs, err := History(root)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "history")
	_, images, err := WriteHistory(out, runs)
	if err != nil {
		t.Fatal(err)
	}
	gp, _ := os.ReadFile(filepath.Join(out, "trend.gp"))
	if !strings.Contains(string(gp), "set logscale y\nset yrange [1.067:208]\nset ytics (2, 5, 10, 20, 50, 100, 200)\n") {
		t.Errorf("trend.gp does not put the latencies on a log scale:\n%s", gp)
	}
	requireRendered(t, images, 1)
	var close []Past
	for _, r := range runs {
		if r.E2EP9999MS < 10 {
			close = append(close, r)
		}
	}
	_, images, err = WriteHistory(out, close)
	if gp, _ := os.ReadFile(filepath.Join(out, "trend.gp")); err != nil || strings.Contains(string(gp), "logscale") {
		t.Errorf("one series of close latencies on a log scale (%v):\n%s", err, gp)
	}
	requireRendered(t, images, 1)
}
