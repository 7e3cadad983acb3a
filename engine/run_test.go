package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/perfrunner/runner/internal/golden"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
	"github.com/perfrunner/runner/twins"
)

// runScenario decodes src with DIR replaced by a fresh directory, runs it and
// returns the directory, the runner and Run's error.
func runScenario(t *testing.T, ctx context.Context, src string) (string, *Runner, error) {
	t.Helper()
	dir := t.TempDir()
	src = strings.ReplaceAll(src, "DIR", dir)
	sc, err := scenario.Decode("s.yaml", []byte(src), scenario.Options{})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	r := &Runner{Scenario: sc, OutDir: filepath.Join(dir, "results"), Version: "test", Open: twins.Open}
	err = r.Run(ctx)
	return dir, r, err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func stepStatuses(rec RunRecord) map[string]string {
	out := map[string]string{}
	for _, s := range rec.Steps {
		out[s.Name] = s.Status
	}
	return out
}

func TestTeardownRunsAfterFailingStep(t *testing.T) {
	dir, r, err := runScenario(t, context.Background(), `name: s
setup:
  - name: create
    exec: {command: [touch, DIR/a], undo: [rm, -f, DIR/a]}
measure:
  - name: fails
    exec: {command: ["false"]}
  - name: never runs
    exec: {command: [touch, DIR/never]}
teardown:
  - name: marker
    exec: {command: [touch, DIR/teardown-ran]}
`)
	var se *StepError
	if !errors.As(err, &se) || se.Step.Name != "fails" {
		t.Fatalf("Run error = %v, want the failing step's", err)
	}
	if !strings.HasPrefix(err.Error(), `s.yaml:6:5: step "fails" (exec): false: exit status 1`) {
		t.Errorf("error text = %q", err)
	}
	if !exists(filepath.Join(dir, "teardown-ran")) {
		t.Error("teardown step did not run")
	}
	if exists(filepath.Join(dir, "a")) {
		t.Error("what setup created was not undone")
	}
	if exists(filepath.Join(dir, "never")) {
		t.Error("a step after the failing one ran")
	}
	rec, err := ReadRunRecord(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"create": "succeeded", "fails": "failed", "never runs": "skipped", "marker": "succeeded"}
	for name, status := range want {
		if got := stepStatuses(*rec)[name]; got != status {
			t.Errorf("step %q status = %q, want %q", name, got, status)
		}
	}
	if rec.Status != "failed" || rec.End == nil {
		t.Errorf("run status = %q, end = %v", rec.Status, rec.End)
	}
	if len(rec.Undone) != 1 || rec.Undone[0].Status != "undone" {
		t.Errorf("undone = %+v", rec.Undone)
	}
	if pending, _ := Pending(r.Dir()); len(pending) != 0 {
		t.Errorf("journal still holds %v", pending)
	}
}

func TestTeardownRunsAfterStepTimeout(t *testing.T) {
	start := time.Now()
	dir, r, err := runScenario(t, context.Background(), `name: s
measure:
  - name: too slow
    timeout: 200ms
    sleep: {duration: 1m}
teardown:
  - exec: {command: [touch, DIR/teardown-ran]}
`)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("Run error = %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Error("the timeout did not stop the step")
	}
	if !exists(filepath.Join(dir, "teardown-ran")) {
		t.Error("teardown did not run")
	}
	if got := stepStatuses(r.Record())["too slow"]; got != "timed-out" {
		t.Errorf("status = %q", got)
	}
}

func TestSetupFailureUndoesOnlyWhatSetupReached(t *testing.T) {
	dir, r, err := runScenario(t, context.Background(), `name: s
setup:
  - name: first
    exec: {command: [touch, DIR/first], undo: [sh, -c, "rm DIR/first && touch DIR/undo-first"]}
  - name: broken
    exec: {command: ["false"]}
  - name: second
    exec: {command: [touch, DIR/second], undo: [touch, DIR/undo-second]}
warmup:
  - sleep: {duration: 1s}
`)
	if err == nil {
		t.Fatal("Run succeeded")
	}
	if !exists(filepath.Join(dir, "undo-first")) || exists(filepath.Join(dir, "first")) {
		t.Error("the first step was not undone")
	}
	if exists(filepath.Join(dir, "undo-second")) {
		t.Error("teardown undid a step that never ran")
	}
	if got := stepStatuses(r.Record())["warmup[0]"]; got != "skipped" {
		t.Errorf("warmup status = %q", got)
	}
}

func TestEveryTeardownStepRuns(t *testing.T) {
	dir, _, err := runScenario(t, context.Background(), `name: s
teardown:
  - name: fails first
    exec: {command: ["false"]}
  - name: fails too
    exec: {command: [sh, -c, "exit 3"]}
  - name: still runs
    exec: {command: [touch, DIR/ran]}
`)
	if !exists(filepath.Join(dir, "ran")) {
		t.Error("a teardown step after a failing one did not run")
	}
	for _, want := range []string{`step "fails first" (exec)`, `step "fails too" (exec): sh: exit status 3`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// deleter is a teardown spec that removes one resource; a test-only kind.
type deleter struct {
	Resource string `yaml:"resource"`
}

var deleterRan bool

func (d *deleter) Run(context.Context, *steps.Env) error { deleterRan = true; return nil }
func (d *deleter) Deletes(*steps.Env) ([]steps.Resource, error) {
	return []steps.Resource{{Kind: "exec", Name: d.Resource}}, nil
}

func init() {
	steps.Register(steps.Kind{Name: "test.delete", New: func() steps.Spec { return new(deleter) }})
}

func TestTeardownSkipsDeletesOfWhatWasNeverCreated(t *testing.T) {
	deleterRan = false
	_, r, err := runScenario(t, context.Background(), `name: s
setup:
  - exec: {command: ["false"]}
  - name: never
    exec: {command: ["true"], undo: ["true"]}
teardown:
  - name: delete never
    test.delete: {resource: setup-01-never}
`)
	if err == nil {
		t.Fatal("Run succeeded")
	}
	if deleterRan {
		t.Error("a teardown step deleting only what was never created ran")
	}
	if got := stepStatuses(r.Record())["delete never"]; got != "skipped" {
		t.Errorf("status = %q", got)
	}

	deleterRan = false
	_, r, err = runScenario(t, context.Background(), `name: s
setup:
  - name: created
    exec: {command: ["true"], undo: ["false"]}
teardown:
  - name: delete it
    test.delete: {resource: setup-00-created}
`)
	if err != nil {
		t.Fatalf("Run: %v (the undo command fails, so it must not run after the step deleted the resource)", err)
	}
	if !deleterRan {
		t.Error("the teardown step did not run")
	}
	if len(r.Record().Undone) != 0 {
		t.Errorf("resource undone twice: %+v", r.Record().Undone)
	}
}

func TestInterruptStopsStepAndTearsDown(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(300*time.Millisecond, func() { cancel(ErrInterrupted) })
	dir, r, err := runScenario(t, ctx, `name: s
setup:
  - name: create
    exec: {command: [touch, DIR/a], undo: [rm, DIR/a]}
  - name: long
    exec: {command: [sleep, "60"]}
measure:
  - sleep: {duration: 1s}
`)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run error = %v, want interrupted", err)
	}
	if exists(filepath.Join(dir, "a")) {
		t.Error("teardown did not undo the setup step")
	}
	rec := r.Record()
	if rec.Status != "interrupted" {
		t.Errorf("status = %q", rec.Status)
	}
	if got := stepStatuses(rec)["long"]; got != "cancelled" {
		t.Errorf("long step status = %q", got)
	}
}

func TestRetries(t *testing.T) {
	dir, r, err := runScenario(t, context.Background(), `name: s
setup:
  - name: flaky
    retries: 2
    exec: {command: [sh, -c, "echo x >> DIR/count; test $(wc -l < DIR/count) -ge 2"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "count"))
	if got := strings.Count(string(data), "x"); got != 2 {
		t.Errorf("attempts = %d, want 2", got)
	}
	if got := r.Record().Steps[0].Attempts; got != 2 {
		t.Errorf("recorded attempts = %d", got)
	}
}

func TestCleanupFinishesTeardown(t *testing.T) {
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(filepath.Join(runDir, RunFile), RunRecord{Status: "running", Target: "local"}); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(runDir)
	if err != nil {
		t.Fatal(err)
	}
	exec := &steps.Exec{Command: []string{"true"}, Undo: []string{"sh", "-c", "echo undone >> " + dir + "/log"}}
	for _, name := range []string{"one", "two"} {
		res, _ := exec.Creates(&steps.Env{StepDir: filepath.Join(runDir, "steps", name)})
		if err := j.Creating(res[0], &scenario.Step{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	j.Undone(steps.Resource{Kind: "exec", Name: "one"})
	j.Close()
	// A torn line, as a kill in the middle of a write would leave.
	f, _ := os.OpenFile(filepath.Join(runDir, JournalFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"create","resou`)
	f.Close()

	lock, err := lockRunDir(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Cleanup(context.Background(), runDir, nil, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Cleanup of a locked run = %v, want a refusal", err)
	}
	lock.Close()

	done, err := Cleanup(context.Background(), runDir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 || done[0].Resource != "exec/two" {
		t.Errorf("undone = %+v, want exec/two only", done)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "log")); string(data) != "undone\n" {
		t.Errorf("undo ran %q", data)
	}
	done, err = Cleanup(context.Background(), runDir, nil, nil)
	if err != nil || len(done) != 0 {
		t.Errorf("second Cleanup = %v, %v; want nothing to do", done, err)
	}
	rec, _ := ReadRunRecord(runDir)
	if rec.Status != "killed" || len(rec.Undone) != 1 {
		t.Errorf("run record after cleanup = %+v", rec)
	}
}

// TestProgressStatusLine checks the live line at fixed widths: the fields
// of lowest rank go first, failures and drops that happened stay, and the
// drain shows as such, never past 100 %.
func TestProgressStatusLine(t *testing.T) {
	p := &Progress{}
	p.phase = scenario.Measure
	p.step = &scenario.Step{Name: "hold", Kind: "sleep"}
	p.started = time.Unix(0, 0)
	p.expected = 10 * time.Second
	var b strings.Builder
	line := func(label string, at time.Time, width int) {
		got := p.statusLine(at, width)
		if width > 0 && utf8.RuneCountInString(got) > width {
			t.Errorf("%s: %d columns, wider than %d: %q", label, utf8.RuneCountInString(got), width, got)
		}
		fmt.Fprintf(&b, "%-26s|%s|\n", fmt.Sprintf("%s @%d", label, width), got)
	}
	line("sleep", time.Unix(2, 500_000_000), 0)
	p.attempt = 2
	line("sleep, second attempt", time.Unix(2, 500_000_000), 0)
	p.expected, p.attempt = 0, 1
	line("unknown length", time.Unix(75, 0), 0)

	p.step = &scenario.Step{Name: "paced load", Kind: "load"}
	p.expected = 12 * time.Second
	p.load = &steps.LoadStatus{Phase: "measure", Step: 2, Steps: 3, TargetRPS: 1000, Sent: 1000, Delivered: 998, PublishP99MS: 1.93, E2EP99MS: 1.81, TotalSendFailures: 3}
	for _, width := range []int{0, 120, 100, 80, 60, 40, 20} {
		line("load, 3 failures", time.Unix(7, 200_000_000), width)
	}
	p.load.TotalSendFailures = 0
	line("load, no failure", time.Unix(7, 200_000_000), 60)
	line("load draining", time.Unix(13, 0), 0)
	line("load draining", time.Unix(13, 0), 60)
	p.load.SendOnly = true
	line("send-only load", time.Unix(7, 200_000_000), 0)
	golden.Check(t, "liveline.txt", []byte(b.String()))
}

func TestReportStepsCannotLeaveDebris(t *testing.T) {
	dir, r, err := runScenario(t, context.Background(), `name: s
measure:
  - sleep: {duration: 10ms}
report:
  - name: creates
    exec: {command: [touch, DIR/f], undo: [rm, -f, DIR/f]}
`)
	if err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, "f")) {
		t.Error("what a report step created outlived the run")
	}
	if len(r.Record().Undone) != 1 {
		t.Errorf("undone = %+v", r.Record().Undone)
	}
}

func TestInterruptDuringTeardownMarksRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	dir := t.TempDir()
	src := strings.ReplaceAll(`name: s
teardown:
  - exec: {command: [sh, -c, "touch DIR/td; sleep 0.5"]}
  - exec: {command: [touch, DIR/td2]}
`, "DIR", dir)
	sc, err := scenario.Decode("s.yaml", []byte(src), scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for !exists(filepath.Join(dir, "td")) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel(ErrInterrupted)
	}()
	r := &Runner{Scenario: sc, OutDir: filepath.Join(dir, "results"), Open: twins.Open}
	err = r.Run(ctx)
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("Run error = %v, want interrupted", err)
	}
	if !exists(filepath.Join(dir, "td2")) {
		t.Error("an interrupt during teardown stopped the teardown")
	}
}

func TestUndoRunsInTheStepsDirectory(t *testing.T) {
	dir := t.TempDir()
	e := &steps.Exec{Command: []string{"true"}, Dir: "relative/work", Undo: []string{"true"}}
	wd, _ := os.Getwd()
	res, err := e.Creates(&steps.Env{StepDir: filepath.Join(dir, "s")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "relative/work"); !strings.Contains(string(res[0].Undo), `"dir":"`+want+`"`) {
		t.Errorf("journaled undo %s does not pin the directory %s", res[0].Undo, want)
	}
}

// TestFailedSetupIsReported fails a run at setup: the error quotes the
// last line the command wrote to stderr, and report.md and run.json say
// that nothing was measured, why, and with which errors.
func TestFailedSetupIsReported(t *testing.T) {
	_, r, err := runScenario(t, context.Background(), `name: s
setup:
  - name: broker ready
    exec: {command: [sh, -c, "echo waiting >&2; echo the broker is not ready >&2; exit 1"]}
warmup:
  - sleep: {duration: 1s}
`)
	want := `s.yaml:3:5: step "broker ready" (exec): sh: exit status 1: "the broker is not ready" (stderr in `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to begin %s", err, want)
	}
	md, rerr := os.ReadFile(filepath.Join(r.Dir(), "report.md"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, line := range []string{"# s · ", "- no pace step was measured", `Exit code 1: the run failed at setup step "broker ready" (exec) (the errors follow).`, "```\n" + err.Error() + "\n```", "## How it ran"} {
		if !strings.Contains(string(md), line) {
			t.Errorf("report.md lacks %q:\n%s", line, md)
		}
	}
	if end := r.Record().Ending; end == nil || end.Code != ExitFailed || len(end.Errors) != 1 || end.Errors[0] != err.Error() {
		t.Errorf("run.json's ending = %+v", end)
	}
}
