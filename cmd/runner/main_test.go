package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/golden"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/steps"
)

// TestMain lets tests run this test binary as the runner itself, so that
// signals reach a real runner process.
func TestMain(m *testing.M) {
	agent.RunIfChild()
	if os.Getenv("RUNNER_TEST_AS_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// runCLI runs the command line in this process.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// startCLI starts the runner as a child process.
func startCLI(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RUNNER_TEST_AS_CLI=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, &out
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

// waitExit waits for cmd to exit within limit and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, limit time.Duration, out *bytes.Buffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		t.Fatalf("runner did not exit within %s; output:\n%s", limit, out)
		return -1
	}
}

func writeScenario(t *testing.T, dir, src string) string {
	t.Helper()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(src, "DIR", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func runDirs(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "*", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// setupThenWait creates DIR/a in setup (journaled) and then waits long.
const setupThenWait = `name: s
setup:
  - name: create
    exec: {command: [touch, DIR/a], undo: [rm, -f, DIR/a]}
  - name: wait
    sleep: {duration: 1m}
measure:
  - sleep: {duration: 1s}
`

func TestInterruptDuringSetupTearsDownAndExits130(t *testing.T) {
	signalTearsDown(t, syscall.SIGINT)
}

// signalTearsDown sends sig to a run waiting in setup and checks that it
// tore down, exited 130 and recorded itself as interrupted.
func signalTearsDown(t *testing.T, sig syscall.Signal) {
	t.Helper()
	dir := t.TempDir()
	file := writeScenario(t, dir, setupThenWait)
	cmd, out := startCLI(t, "exec", file, "--out", filepath.Join(dir, "results"))
	waitFile(t, filepath.Join(dir, "a"))
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 30*time.Second, out); code != exitInterrupted {
		t.Fatalf("exit code = %d, want 130; output:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Errorf("setup's file survived %s; output:\n%s", sig, out)
	}
	rec, err := engine.ReadRunRecord(runDirs(t, filepath.Join(dir, "results"))[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "interrupted" || rec.End == nil {
		t.Errorf("run record status = %q", rec.Status)
	}
}

// A closed terminal (SIGHUP) and a quit (SIGQUIT) end a run as Ctrl-C
// does: teardown done, exit 130, the run recorded as interrupted.
func TestHangupAndQuitTearDown(t *testing.T) {
	for name, sig := range map[string]syscall.Signal{"SIGHUP": syscall.SIGHUP, "SIGQUIT": syscall.SIGQUIT, "SIGTERM": syscall.SIGTERM} {
		t.Run(name, func(t *testing.T) { signalTearsDown(t, sig) })
	}
}

// A reader of stdout that leaves early (runner exec … | head -1) does not
// kill the run: it goes on through teardown and records its success.
func TestClosedStdoutDoesNotKillTheRun(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: s
setup:
  - name: create
    exec: {command: [touch, DIR/a], undo: [rm, -f, DIR/a]}
measure:
  - name: one
    sleep: {duration: 500ms}
  - name: two
    sleep: {duration: 500ms}
  - name: three
    sleep: {duration: 500ms}
teardown:
  - name: after
    exec: {command: [touch, DIR/teardown-ran]}
`)
	cmd := exec.Command(os.Args[0], "exec", file, "--out", filepath.Join(dir, "results"))
	cmd.Env = append(os.Environ(), "RUNNER_TEST_AS_CLI=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	first := make([]byte, 1)
	if _, err := stdout.Read(first); err != nil {
		t.Fatal(err)
	}
	stdout.Close() // the reader leaves: every later write hits a closed pipe
	if code := waitExit(t, cmd, 60*time.Second, &stderr); code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr:\n%s", code, &stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "teardown-ran")); err != nil {
		t.Errorf("teardown did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("setup's file survived the run")
	}
	rec, err := engine.ReadRunRecord(runDirs(t, filepath.Join(dir, "results"))[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "succeeded" {
		t.Errorf("run record status = %q, want succeeded", rec.Status)
	}
}

func TestSecondInterruptExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: s
setup:
  - name: create
    exec: {command: [touch, DIR/a], undo: [sh, -c, "touch DIR/undo-started; sleep 60; rm -f DIR/a"]}
  - name: wait
    sleep: {duration: 1m}
`)
	cmd, out := startCLI(t, "exec", file, "--out", filepath.Join(dir, "results"))
	waitFile(t, filepath.Join(dir, "a"))
	cmd.Process.Signal(syscall.SIGINT)
	waitFile(t, filepath.Join(dir, "undo-started"))
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, cmd, 10*time.Second, out); code != exitInterrupted {
		t.Fatalf("exit code = %d; output:\n%s", code, out)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("second interrupt took %s to exit", elapsed)
	}
	if !strings.Contains(out.String(), "runner cleanup "+filepath.Join(dir, "results")) {
		t.Errorf("output does not say how to finish the teardown:\n%s", out)
	}
	// The teardown was cut short: the journal still holds the resource.
	pending, err := engine.Pending(runDirs(t, filepath.Join(dir, "results"))[0])
	if err != nil || len(pending) != 1 {
		t.Errorf("pending = %v, %v; want the resource whose undo was cut short", pending, err)
	}
}

func TestKilledRunIsFinishedByCleanup(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, setupThenWait)
	cmd, out := startCLI(t, "exec", file, "--out", filepath.Join(dir, "results"))
	waitFile(t, filepath.Join(dir, "a"))
	cmd.Process.Signal(syscall.SIGKILL)
	waitExit(t, cmd, 10*time.Second, out)
	if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
		t.Fatal("setup's file vanished before cleanup")
	}
	runDir := runDirs(t, filepath.Join(dir, "results"))[0]

	code, stdout, stderr := runCLI("cleanup", runDir)
	if code != exitOK {
		t.Fatalf("cleanup exit code = %d: %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("cleanup did not undo the setup step")
	}
	if !strings.Contains(stdout, "undid 1 resources") {
		t.Errorf("cleanup output: %s", stdout)
	}
	if code, stdout, _ := runCLI("cleanup", runDir); code != exitOK || !strings.Contains(stdout, "nothing left to undo") {
		t.Errorf("second cleanup: %d %s", code, stdout)
	}
	if code, _, stderr := runCLI("cleanup", filepath.Join(dir, "no-such-run")); code != exitBadInput {
		t.Errorf("cleanup of a missing directory: exit %d, %s", code, stderr)
	}
}

func TestExecExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		src  string
		args []string
		code int
	}{
		{name: "success", src: "name: ok\nmeasure:\n  - sleep: {duration: 10ms}\n", code: exitOK},
		{name: "failing measure step", src: "name: f\nmeasure:\n  - exec: {command: [\"false\"]}\nteardown:\n  - exec: {command: [touch, DIR/td]}\n", code: exitFailed},
		{name: "bad scenario", src: "name: b\nmeasure:\n  - slep: {}\n", code: exitBadInput},
		{name: "bad target", src: "name: t\n", args: []string{"--target", "moon"}, code: exitBadInput},
		{name: "bad pace flag", src: "name: p\n", args: []string{"--pace", "10:0"}, code: exitBadInput},
		{name: "negative step timeout", src: "name: n\n", args: []string{"--step-timeout", "-1s"}, code: exitBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeScenario(t, dir, tt.src)
			args := append([]string{"exec", file, "--out", filepath.Join(dir, "results")}, tt.args...)
			code, stdout, stderr := runCLI(args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "td")); err != nil {
		t.Error("teardown did not run after the failing measure step")
	}
}

func TestValidateReportsPositionAndExits2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	src := `# a scenario with a typo
name: bad
paces:
  smoke: "10:1"
setup:
  - name: prepare
    exec:
      command: ["true"]
measure:
  - name: settle
    sleep: {duration: 1s}
  - name: wait a bit
    sleep:
      duration: 5s
    timout: 5s
`
	os.WriteFile(file, []byte(src), 0o644)
	code, _, stderr := runCLI("validate", file)
	if code != exitBadInput {
		t.Errorf("exit code = %d, want 2", code)
	}
	want := file + `:15:5: step "wait a bit" (sleep): unknown key "timout" (did you mean "timeout"?)`
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr = %q\nwant prefix %q", stderr, want)
	}
}

// shippedScenarios returns the shipped scenario files, matrix files apart.
func shippedScenarios(t *testing.T) []string {
	all, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil || len(all) == 0 {
		t.Fatalf("no shipped scenarios: %v", err)
	}
	platforms, _ := filepath.Glob("../../scenarios/platform/*.yaml")
	if len(platforms) < 2 {
		t.Fatalf("shipped platforms: %v", platforms)
	}
	all = append(all, platforms...)
	var files []string
	for _, f := range all {
		if !strings.HasPrefix(filepath.Base(f), "matrix-") && !strings.HasSuffix(f, ".values.yaml") {
			files = append(files, f)
		}
	}
	return files
}

// A scenario that requires a platform file that is not there, or a file
// that provides nothing, does not validate.
func TestValidateNamesAMissingPlatform(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	src := "name: s\nrequires:\n  - platform: PLATFORM\nmeasure:\n  - name: wait\n    sleep: {duration: 1ms}\n"
	for platform, want := range map[string]string{
		"nowhere.yaml": "requires: platform nowhere.yaml: scenario: open " + filepath.Join(dir, "nowhere.yaml"),
		"s.yaml":       "requires: platform s.yaml: the file provides nothing",
	} {
		if err := os.WriteFile(file, []byte(strings.ReplaceAll(src, "PLATFORM", platform)), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := runCLI("validate", file); code != exitBadInput || !strings.Contains(stderr, want) {
			t.Errorf("platform %s: exit %d, %s; want 2 and %q", platform, code, stderr, want)
		}
	}
}

func TestValidateShippedScenarios(t *testing.T) {
	files := shippedScenarios(t)
	// url.yaml sends to an endpoint of the user's: valid once it is given.
	const url = "../../scenarios/url.yaml"
	others := slices.DeleteFunc(slices.Clone(files), func(f string) bool { return f == url })
	code, stdout, stderr := runCLI(append([]string{"validate"}, others...)...)
	if code != exitOK || len(others) != len(files)-1 {
		t.Fatalf("validate exit code %d:\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI("validate", url, "--set", "sinkURL=http://127.0.0.1:8080/events"); code != exitOK {
		t.Errorf("validate url.yaml with a sinkURL: exit code %d:\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI("validate", url); code != exitBadInput || !strings.Contains(stderr, `step "paced load" (load): needs a sink (e.g. sink: receiver/perf) or a url`) {
		t.Errorf("validate url.yaml without a sinkURL: exit code %d:\n%s", code, stderr)
	}
	if code, _, stderr := runCLI("validate", url, "--set", "sinkURL=127.0.0.1:8080"); code != exitBadInput || !strings.Contains(stderr, `url: "127.0.0.1:8080" is not an http:// or https:// URL`) {
		t.Errorf("validate url.yaml with a sinkURL that is no URL: exit code %d:\n%s", code, stderr)
	}
	for _, f := range files {
		src, _ := os.ReadFile(f)
		schema := "../scenario.schema.json"
		if filepath.Base(filepath.Dir(f)) == "platform" {
			schema = "../../scenario.schema.json"
		}
		if !strings.HasPrefix(string(src), "# yaml-language-server: $schema="+schema+"\n") {
			t.Errorf("%s does not start with the yaml-language-server schema comment", f)
		}
	}
}

func TestSchemaValidatesShippedScenarios(t *testing.T) {
	committed, err := os.ReadFile("../../scenario.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, scenario.Schema()) {
		t.Error("scenario.schema.json is out of date; run make schema")
	}
	code, stdout, _ := runCLI("schema")
	if code != exitOK || stdout != string(scenario.Schema()) {
		t.Error("runner schema does not print the schema")
	}

	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(committed))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(scenario.SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(scenario.SchemaID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	validate := func(src []byte) error {
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil {
			return err
		}
		// Round-trip through JSON so the validator sees JSON types.
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return err
		}
		return schema.Validate(inst)
	}
	for _, f := range shippedScenarios(t) {
		src, _ := os.ReadFile(f)
		if err := validate(src); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := []string{
		"name: s\nsetup:\n  - sleep: {duration: 1s}\n    timout: 1s\n",
		"name: s\nsetup:\n  - sleep: {duration: 1s}\n    retries: 2\n",
		"name: s\nsetup:\n  - sleep: {duration: 1s}\n    exec: {command: [x]}\n",
		"name: s\npaces: {a: fast}\n",
		"description: no name\n",
	}
	for _, src := range bad {
		if err := validate([]byte(src)); err == nil {
			t.Errorf("schema accepts a bad scenario:\n%s", src)
		}
	}
}

func TestPlanPrintsScheduleWithoutSideEffects(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: p
paces:
  1k-2k: "1000:30,1100:30,1200:30,1300:30,1400:30,1500:30,1600:30,1700:30,1800:30,1900:30,2000:30"
setup:
  - exec: {command: [touch, DIR/side-effect]}
`)
	code, stdout, stderr := runCLI("plan", file)
	if code != exitOK {
		t.Fatalf("plan: %d %s", code, stderr)
	}
	if !strings.Contains(stdout, "total: 495000 events over 5m30s") {
		t.Errorf("plan output lacks the totals:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "side-effect")); err == nil {
		t.Error("plan ran a step")
	}
}

func TestReadmeDocumentsEveryKind(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range steps.Names() {
		if strings.HasPrefix(kind, "test.") {
			continue
		}
		if !strings.Contains(string(readme), "#### `"+kind+"`") {
			t.Errorf("README.md has no section for step kind %s", kind)
		}
	}
}

// TestDirectScenarioEndToEnd runs the shipped direct scenario at 2000 events/s
// for 5 s and checks the results contract.
func TestDirectScenarioEndToEnd(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI("exec", "../../scenarios/direct.yaml", "--pace", "2000:5", "--set", "warmupPace=500:1", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	dirs := runDirs(t, out)
	if len(dirs) != 1 {
		t.Fatalf("run dirs: %v", dirs)
	}
	data, err := os.ReadFile(filepath.Join(dirs[0], "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Schema                    string `json:"schema"`
		Scenario, PaceSet, Target string
		Paces                     []map[string]any `json:"paces"`
		Totals                    map[string]any   `json:"totals"`
		Warmup                    map[string]any   `json:"warmup"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Schema != "runner.summary/v1" || len(sum.Paces) != 1 {
		t.Fatalf("summary: %s", data)
	}
	for _, key := range []string{"intended", "sent", "accepted", "delivered"} {
		if sum.Totals[key] != 10000.0 {
			t.Errorf("totals.%s = %v, want 10000\n%s", key, sum.Totals[key], stdout)
		}
	}
	for _, key := range []string{"lost", "dropped", "duplicates", "send_failures"} {
		if sum.Totals[key] != 0.0 {
			t.Errorf("totals.%s = %v, want 0", key, sum.Totals[key])
		}
	}
	for _, key := range []string{"target_rps", "seconds", "achieved_send_rps", "delivered_rps", "publish_ms", "e2e_ms", "send_lag_ms"} {
		if _, ok := sum.Paces[0][key]; !ok {
			t.Errorf("paces[0] lacks %s", key)
		}
	}
	if sum.Warmup == nil || sum.Warmup["intended"] != 500.0 {
		t.Errorf("warmup = %v, want its 500 events apart", sum.Warmup)
	}
	timeline, err := os.ReadFile(filepath.Join(dirs[0], "timeline.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(timeline)), "\n")
	if !strings.HasPrefix(lines[0], "second\tunix_s\tphase\tstep\ttarget_rps\tintended") || !strings.Contains(lines[0], "e2e_p9999_ms") {
		t.Errorf("timeline header: %s", lines[0])
	}
	measured := 0
	for _, l := range lines[1:] {
		if strings.Contains(l, "\tmeasure\t") {
			measured++
			if !strings.Contains(l, "\t2000\t2000\t2000\t") {
				t.Errorf("a measured second without 2000 events: %s", l)
			}
		}
	}
	if measured != 5 {
		t.Errorf("%d measured seconds in the timeline, want 5:\n%s", measured, timeline)
	}
	if !strings.Contains(stdout, "measure     2000") {
		t.Errorf("no per-step table in the output:\n%s", stdout)
	}
	// Under the race detector the generator itself may not keep up, so the
	// verdict can go either way here; it must be one of the two, with a
	// reason when broken.
	switch v := sum.Paces[0]["verdict"]; {
	case v == "held":
	case v == "broken" && sum.Paces[0]["reason"] != nil:
	default:
		t.Errorf("verdict %v, reason %v", v, sum.Paces[0]["reason"])
	}
	for _, f := range []string{"report.md", "steps.tsv", "timeline.gp", "points.gp", "steps.gp"} {
		if _, err := os.Stat(filepath.Join(dirs[0], f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}

	code, stdout, stderr = runCLI("plot", dirs[0], "--skip", "2s")
	if _, err := exec.LookPath("gnuplot"); err != nil {
		if code != exitFailed {
			t.Errorf("plot without gnuplot: exit %d", code)
		}
		return
	}
	if code != exitOK {
		t.Fatalf("plot --skip: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"summary.json", "timeline.png", "steps.png", "report.md"} {
		if _, err := os.Stat(filepath.Join(dirs[0], "skip-2s", f)); err != nil {
			t.Errorf("plot --skip 2s did not write %s", f)
		}
	}
	if code, _, _ := runCLI("plot", dirs[0], "--window", "3s:1s"); code != exitBadInput {
		t.Errorf("a backwards window: exit %d, want 2", code)
	}
}

// TestAgentsShareALoad runs the in-memory channel's twin with its measured
// load sent by three agent processes: every event is intended, sent,
// accepted and delivered exactly once, as when the runner sends.
func TestAgentsShareALoad(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI("exec", "../../scenarios/channel-imc.yaml", "--pace", "1000:2", "--set", "warmupPace=200:1", "--set", "agents=3", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	dirs := runDirs(t, out)
	data, err := os.ReadFile(filepath.Join(dirs[0], "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Totals map[string]any `json:"totals"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"intended": 2000, "sent": 2000, "accepted": 2000, "delivered": 2000, "lost": 0, "duplicates": 0, "dropped": 0} {
		if sum.Totals[key] != want {
			t.Errorf("totals.%s = %v, want %g", key, sum.Totals[key], want)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(dirs[0], "runner.log")); !strings.Contains(string(log), "agents started") {
		t.Errorf("the log does not say the agents started:\n%s", log)
	}
}

func TestBreachedThresholdExits3AfterTeardown(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: th
paces: {short: "200:2"}
thresholds:
  - "e2e.p9999 < 1us"
  - "lost == 0"
  - "delivered_ratio >= 0.99 per step"
setup:
  - receiver: {}
  - exec: {command: [touch, DIR/made], undo: [rm, DIR/made]}
measure:
  - load: {sink: receiver/perf}
`)
	code, stdout, stderr := runCLI("exec", file, "--out", filepath.Join(dir, "results"))
	if code != exitThreshold {
		t.Fatalf("exit %d, want 3\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `threshold "e2e.p9999 < 1us" breached over the run`) || strings.Contains(stderr, `"lost == 0"`) {
		t.Errorf("stderr does not name exactly the breached threshold:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "made")); err == nil {
		t.Error("teardown did not run")
	}
	rec, _ := engine.ReadRunRecord(runDirs(t, filepath.Join(dir, "results"))[0])
	if rec.Status != "thresholds-breached" {
		t.Errorf("run status %q", rec.Status)
	}

	bad := writeScenario(t, dir, `name: th
thresholds:
  - "e2e.p9999 < 50ms"
  - "e2e.p42 < 50ms"
  - "lost = 0"
`)
	code, _, stderr = runCLI("validate", bad)
	if code != exitBadInput {
		t.Errorf("validate of bad thresholds: exit %d", code)
	}
	for _, want := range []string{
		bad + `:4:5: threshold "e2e.p42 < 50ms": unknown statistic "p42"`,
		bad + `:5:5: threshold "lost = 0": want FIGURE OP VALUE`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, p99 float64) string {
		run := filepath.Join(dir, name)
		os.MkdirAll(run, 0o755)
		sum := fmt.Sprintf(`{"schema":"runner.summary/v1","scenario":"s","paces":[{"phase":"measure","target_rps":1000,"achieved_send_rps":1000,"delivered_rps":1000,"publish_ms":{"p50":1,"p99":%g,"p9999":%g},"e2e_ms":{"p50":1,"p99":%g,"p9999":%g}}]}`, p99, 2*p99, p99, 2*p99)
		os.WriteFile(filepath.Join(run, "summary.json"), []byte(sum), 0o644)
		return run
	}
	a, b, c := write("a", 10), write("b", 10.2), write("c", 20)
	if code, stdout, stderr := runCLI("compare", a, b, "--out", filepath.Join(dir, "cmp")); code != exitOK || !strings.Contains(stdout, "verdict: same") {
		t.Errorf("same runs: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ := runCLI("compare", a, c, "--format", "md", "--out", filepath.Join(dir, "cmp"))
	if code != exitThreshold || !strings.Contains(stdout, "| 1 | 1000 | 2 |") || !strings.Contains(stdout, "worse: publish_p99 +100.0%") {
		t.Errorf("a slower run: exit %d\n%s", code, stdout)
	}
	if code, _, _ := runCLI("compare", a, c, "--tolerance", "lots"); code != exitBadInput {
		t.Errorf("bad tolerance: exit %d", code)
	}
	if code, _, _ := runCLI("compare", a, filepath.Join(dir, "missing")); code != exitBadInput {
		t.Errorf("missing run: exit %d", code)
	}
}

// On --target kubernetes, a bad kubeconfig is bad input and an unreachable
// server a failure, both before anything runs: no run directory is made.
func TestKubernetesTargetRefusedBeforeAnythingRuns(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "results")
	code, _, stderr := runCLI("exec", "../../scenarios/direct.yaml", "--target", "kubernetes", "--kubeconfig", filepath.Join(dir, "none"), "--out", out)
	if code != exitBadInput || !strings.Contains(stderr, "--target kubernetes: kubeconfig:") {
		t.Errorf("missing kubeconfig: exit %d: %s", code, stderr)
	}
	kc := filepath.Join(dir, "kubeconfig")
	src := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t0ken}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
	if err := os.WriteFile(kc, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI("exec", "../../scenarios/direct.yaml", "--target", "kubernetes", "--kubeconfig", kc, "--out", out)
	if code != exitFailed || !strings.Contains(stderr, "cannot reach the API server https://127.0.0.1:1 of context x") || !strings.Contains(stderr, "nothing was run") || strings.Contains(stderr, "t0ken") {
		t.Errorf("unreachable: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a results directory was made: %v", err)
	}
}

// TestMemoryBudgetRefusedBeforeSetup plants a small memory budget
// (GOMEMLIMIT): a load that cannot fit is refused with exit 2 before setup
// runs, and the message gives the figures.
func TestMemoryBudgetRefusedBeforeSetup(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: m
setup:
  - exec: {command: [touch, DIR/a], undo: [rm, -f, DIR/a]}
  - receiver: {name: perf}
measure:
  - name: big
    load: {sink: receiver/perf, pace: "1000:10", inFlight: 20000}
`)
	cmd := exec.Command(os.Args[0], "exec", file, "--out", filepath.Join(dir, "results"))
	cmd.Env = append(os.Environ(), "RUNNER_TEST_AS_CLI=1", "GOMEMLIMIT=300MiB")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitBadInput {
		t.Fatalf("exit code = %d, want %d:\n%s", code, exitBadInput, out)
	}
	want := `s.yaml:6:5: step "big" (load): the run needs about 764.8 MiB of memory, more than its budget of 300.0 MiB (GOMEMLIMIT); ` +
		`this load alone: 10000 events tracked at 2 bits each (2.5 KiB) and 20000 sends in flight with their connections (508.8 MiB); lower its pace, its duration or inFlight`
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks\n%s\ngot:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("setup ran")
	}
	if dirs := runDirs(t, filepath.Join(dir, "results")); len(dirs) != 0 {
		t.Errorf("a run directory was made: %v", dirs)
	}
}

// TestClosingBlockOfABrokenRun runs the in-memory channel's twin with a
// capacity below the second pace step: the closing block gives each step's
// verdict with its reason and the sustained rate; the run goes through
// (exit 0) and says that a step broke, unless --fail-on-broken makes it
// exit 3. run.json and report.md carry the command line, the --sets, the
// tags and the environment.
func TestClosingBlockOfABrokenRun(t *testing.T) {
	out := t.TempDir()
	args := []string{"exec", "../../scenarios/channel-imc.yaml", "--pace", "200:2,900:2", "--set", "warmupPace=200:1", "--set", "capacity=400", "--tag", "ticket=PERF-12", "--out", out}
	code, stdout, stderr := runCLI(args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	// The warmup and the first step may be judged generator-saturated on
	// a busy machine (under -race); the second step breaks whatever
	// happens: its delivered rate is the twin's capacity.
	for _, want := range []string{
		`\nverdict\n  warmup 200/s  \S+.*\n  step 1 200/s  \S+.*\n  step 2 900/s  broken: delivered \d+\.\d/s < 99% of 900/s`,
		`\n  sustained rate: (200 events/s \(the highest held step below the lowest broken one\)|none .*)\n`,
		`exit 0: the run went through; [12] of 2 pace steps broke( and 1 generator-saturated)? \(with --fail-on-broken, exit 3\)\nresults in ` + regexp.QuoteMeta(out),
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("stdout does not match %q:\n%s", want, stdout)
		}
	}
	dir := runDirs(t, out)[0]
	rec, err := engine.ReadRunRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Ending == nil || rec.Ending.Code != 0 || rec.Context == nil || rec.Context.Tags["ticket"] != "PERF-12" ||
		!slices.Equal(rec.Context.Sets, []string{"warmupPace=200:1", "capacity=400"}) || rec.Context.Environment.CPUs == 0 || rec.Context.Environment.Go == "" {
		t.Errorf("run.json: ending %+v, context %+v", rec.Ending, rec.Context)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{`- step 2 at 900/s: \*\*broken\*\* \(delivered `, `Exit code 0: the run went through; [12] of 2 pace steps broke`, "- Tags: `ticket=PERF-12`", "- Overridden with --set: `warmupPace=200:1`, `capacity=400`", "- Environment: runner "} {
		if !regexp.MustCompile(want).Match(md) {
			t.Errorf("report.md does not match %q:\n%s", want, md)
		}
	}

	code, stdout, stderr = runCLI(append(args, "--fail-on-broken")...)
	if code != exitThreshold {
		t.Fatalf("--fail-on-broken: exit %d, want 3\n%s%s", code, stdout, stderr)
	}
	if want := `exit 3: pace steps? (1 \(200/s(, generator-saturated)?\), )?2 \(900/s\) broke, and the scenario expects (it|them) to hold`; !regexp.MustCompile(want).MatchString(stdout) || !strings.Contains(stderr, "2 (900/s) broke") {
		t.Errorf("--fail-on-broken: the ending does not match %q:\n%s%s", want, stdout, stderr)
	}
	if code, _, stderr := runCLI("exec", "../../scenarios/direct.yaml", "--tag", "nokey", "--out", out); code != exitBadInput || !strings.Contains(stderr, `--tag "nokey": want key=value`) {
		t.Errorf("a tag without a value: exit %d\n%s", code, stderr)
	}
}

// TestOutputForScripts checks --output json (one JSON object per second of
// each load on stdout, then the ending with the summary) and --quiet
// (nothing but the closing block).
func TestOutputForScripts(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runCLI("exec", "../../scenarios/direct.yaml", "--pace", "300:3", "--set", "warmupPace=300:2", "--output", "json", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	seconds := map[string]int{}
	for i, line := range lines {
		var obj struct {
			Type     string `json:"type"`
			Phase    string `json:"phase"`
			Sent     int64  `json:"sent"`
			ExitCode *int   `json:"exit_code"`
			Dir      string `json:"dir"`
			Summary  *struct {
				SustainedRPS float64 `json:"sustained_rps"`
				Paces        []struct {
					GeneratorOnly bool `json:"generator_only"`
				} `json:"paces"`
			} `json:"summary"`
		}
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("stdout line %d is not JSON: %v\n%s", i+1, err, line)
		}
		switch {
		case obj.Type == "second":
			seconds[obj.Phase]++
			if obj.Sent != 300 {
				t.Errorf("a second sent %d, want 300: %s", obj.Sent, line)
			}
		case obj.Type == "end" && i == len(lines)-1:
			// On a busy machine (under -race) the generator may fall
			// behind at 300/s: the step is then judged saturated and
			// nothing is sustained.
			if obj.ExitCode == nil || *obj.ExitCode != 0 || obj.Summary == nil || obj.Dir == "" || len(obj.Summary.Paces) != 1 {
				t.Fatalf("the ending: %s", line)
			}
			want := 300.0
			if obj.Summary.Paces[0].GeneratorOnly {
				want = 0
			}
			if obj.Summary.SustainedRPS != want {
				t.Errorf("the ending sustains %v events/s, want %v: %s", obj.Summary.SustainedRPS, want, line)
			}
		default:
			t.Errorf("stdout line %d: %s", i+1, line)
		}
	}
	// A load's seconds are reported from its second second on.
	if seconds["measure"] < 2 || seconds["warmup"] < 1 {
		t.Errorf("seconds reported per phase: %v", seconds)
	}
	if !strings.Contains(stderr, "verdict\n") || !strings.Contains(stderr, "step \"paced load\" (load): succeeded") {
		t.Errorf("stderr lacks the progress and the closing block:\n%s", stderr)
	}

	code, stdout, stderr = runCLI("exec", "../../scenarios/direct.yaml", "--pace", "300:1", "--set", "warmupPace=300:1", "--quiet", "--out", out)
	if code != exitOK || !strings.HasPrefix(stdout, "verdict\n  warmup 300/s  ") || !strings.Contains(stdout, "\n  step 1 300/s  ") || strings.Contains(stdout, "setup") {
		t.Errorf("--quiet: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI("exec", "../../scenarios/direct.yaml", "--output", "yaml"); code != exitBadInput || !strings.Contains(stderr, `--output "yaml": must be text or json`) {
		t.Errorf("--output yaml: exit %d\n%s", code, stderr)
	}
}

// TestPlanTellsTheWholeRun checks runner plan of a scenario (variables with
// their overrides, thresholds, each load's pace, the wall time with the
// warmup and drains) against a golden file, and of a matrix file (every
// cell in order, with when it would start).
func TestPlanTellsTheWholeRun(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, `name: planned
description: A scenario to plan.
vars: {payloadBytes: 512, warmupPace: "200:5", empty: ""}
paces: {ramp: "100:10,200:10"}
thresholds: ["e2e.p9999 < 50ms", "lost == 0 per step"]
mustHold: 150
setup:
  - receiver: {}
warmup:
  - warmup: {sink: receiver/perf, pace: "{{ .Vars.warmupPace }}"}
measure:
  - load: {sink: receiver/perf, payloadBytes: "{{ .Vars.payloadBytes }}", drainTimeout: 5s}
  - sleep: {duration: 3s}
`)
	code, stdout, stderr := runCLI("plan", file, "--set", "payloadBytes=1024")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	golden.Check(t, "plan.txt", []byte(strings.ReplaceAll(stdout, file, "planned.yaml")))

	code, stdout, stderr = runCLI("plan", "../../scenarios/matrix-2019.yaml", "--pace-override", "500:2")
	for _, want := range []string{
		"matrix matrix-2019 (../../scenarios/matrix-2019.yaml), target local: 6 cells",
		"  every cell runs the pace 500:2 instead of its set's, its warmups too",
		"    6  source-kafka/pace-500x2/r1               pace-500x2 (1 step)                4s           20s",
		"wall time: 24s of load (warmup 12s, measure 12s)",
	} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("plan of a matrix lacks %q: exit %d\n%s%s", want, code, stdout, stderr)
		}
	}
	if code, _, stderr := runCLI("plan", "../../scenarios/matrix-2019.yaml", "--pace", "smoke"); code != exitBadInput || !strings.Contains(stderr, "--pace, --set and -f do not apply") {
		t.Errorf("plan of a matrix with --pace: exit %d %s", code, stderr)
	}
}

// TestHelpIsTrueToTheFlags walks every command: each has examples, and
// every --flag its examples and description name is one it takes.
func TestHelpIsTrueToTheFlags(t *testing.T) {
	root := newRootCommand(io.Discard, io.Discard)
	root.InitDefaultVersionFlag()
	flagRef := regexp.MustCompile(`(?:^|[\s(\x60])--([a-z][a-z-]+)`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" || !c.Runnable() {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no example in its help", c.CommandPath())
		}
		if c.DisableFlagParsing {
			return // the agent parses its own
		}
		for _, text := range []string{c.Example, c.Long, c.Use} {
			for _, m := range flagRef.FindAllStringSubmatch(text, -1) {
				if c.Flags().Lookup(m[1]) == nil && c.InheritedFlags().Lookup(m[1]) == nil && c.Root().Flags().Lookup(m[1]) == nil && m[1] != "help" {
					t.Errorf("%s: its help names --%s, which it does not take", c.CommandPath(), m[1])
				}
			}
		}
	}
	walk(root)
}

// TestCLIConventions checks --version, flags refused where they do not
// apply, validate of a directory, durations in bare seconds and the
// schemas written for an editor.
func TestCLIConventions(t *testing.T) {
	if code, stdout, _ := runCLI("--version"); code != exitOK || !strings.HasPrefix(stdout, "runner ") || !strings.Contains(stdout, "agent image ghcr.io/") {
		t.Errorf("--version: exit %d %q", code, stdout)
	}
	code, _, stderr := runCLI("exec", "../../scenarios/direct.yaml", "-n", "perf", "--context", "kind")
	if code != exitBadInput || !strings.Contains(stderr, "--context, --namespace: apply only with --target kubernetes, and the target is local") {
		t.Errorf("-n on local: exit %d %s", code, stderr)
	}
	if code, stdout, stderr := runCLI("validate", "../../scenarios/platform"); code != exitOK || !strings.Contains(stdout, "knative-eventing.yaml: ok") || strings.Contains(stdout+stderr, "values.yaml") {
		t.Errorf("validate DIR: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI("validate", t.TempDir()); code != exitBadInput || !strings.Contains(stderr, "no .yaml or .yml file") {
		t.Errorf("validate of an empty directory: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI("plan", "../../scenarios/direct.yaml", "--step-timeout", "90"); code != exitOK {
		t.Errorf("--step-timeout 90: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI("plan", "../../scenarios/direct.yaml", "--step-timeout", "-5"); code != exitBadInput || !strings.Contains(stderr, "must not be negative") {
		t.Errorf("--step-timeout -5: exit %d %s", code, stderr)
	}
	var skip time.Duration
	fs := pflag.NewFlagSet("plot", pflag.ContinueOnError)
	durationVar(fs, &skip, "skip", 0, "")
	if err := fs.Parse([]string{"--skip", "2"}); err != nil || skip != 2*time.Second {
		t.Errorf("--skip 2: %s %v", skip, err)
	}
	if w, err := plotWindow(skip, ""); err != nil || w.From != 2 {
		t.Errorf("--skip 2: %+v %v", w, err)
	}
	if w, err := plotWindow(0, "30:90"); err != nil || w.From != 30 || w.To != 90 {
		t.Errorf("--window 30:90: %+v %v", w, err)
	}
	dir := filepath.Join(t.TempDir(), "schemas")
	code, stdout, _ := runCLI("schema", "--write", dir)
	data, err := os.ReadFile(filepath.Join(dir, "scenario.schema.json"))
	if code != exitOK || err != nil || !bytes.Equal(data, scenario.Schema()) || !strings.Contains(stdout, "# yaml-language-server: $schema="+filepath.Join(dir, "scenario.schema.json")) {
		t.Errorf("schema --write: exit %d %v\n%s", code, err, stdout)
	}
}

// TestShellCompletion asks the completion the shells' scripts ask
// (runner __complete): pace sets and variables of the scenario on the
// line, targets, formats and the kubeconfig's contexts.
func TestShellCompletion(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {}}]
contexts: [{name: kind-perf, context: {cluster: c, user: u}}, {name: prod, context: {cluster: c, user: u}}]
current-context: prod
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"exec", "../../scenarios/channel-imc.yaml", "--pace", ""}, []string{"1k-2k\t", "1k-long\t1000:360", "smoke\t500:2,1000:2"}},
		{[]string{"exec", "../../scenarios/channel-imc.yaml", "--set", "cap"}, []string{"capacity="}},
		{[]string{"plan", "../../scenarios/channel-imc.yaml", "--target", ""}, []string{"local", "kubernetes"}},
		{[]string{"plot", "RUN_DIR", "--format", ""}, []string{"png", "svg"}},
		{[]string{"compare", "A", "B", "--format", "m"}, []string{"md"}},
		{[]string{"exec", "../../scenarios/direct.yaml", "--output", ""}, []string{"text", "json"}},
		{[]string{"exec", "../../scenarios/direct.yaml", "--kubeconfig", kubeconfig, "--context", "k"}, []string{"kind-perf"}},
		{[]string{"exec", ""}, []string{"yaml", "yml", ":8"}},
	} {
		code, stdout, stderr := runCLI(append([]string{"__complete"}, c.args...)...)
		for _, want := range c.want {
			if code != exitOK || !strings.Contains(stdout, want) {
				t.Errorf("completion of %q lacks %q: exit %d\n%s%s", c.args, want, code, stdout, stderr)
			}
		}
	}
}

// TestPlotOfARunThatMeasuredNothing plots, and compares, a run that failed
// at setup: a clear sentence that its run measured nothing and why, and no
// graph.
func TestPlotOfARunThatMeasuredNothing(t *testing.T) {
	dir := t.TempDir()
	file := writeScenario(t, dir, "name: f\nsetup:\n  - name: broker ready\n    exec: {command: [sh, -c, \"echo no broker >&2; exit 1\"]}\n")
	if code, stdout, stderr := runCLI("exec", file, "--out", filepath.Join(dir, "results")); code != exitFailed {
		t.Fatalf("exec: exit %d\n%s%s", code, stdout, stderr)
	}
	runDir := runDirs(t, filepath.Join(dir, "results"))[0]
	code, _, stderr := runCLI("plot", runDir)
	want := runDir + ` measured nothing (its run failed: ` + file + `:3:5: step "broker ready" (exec): sh: exit status 1: "no broker" (stderr in `
	if code != exitFailed || !strings.Contains(stderr, want) {
		t.Errorf("plot: exit %d, want %d and %s\n%s", code, exitFailed, want, stderr)
	}
	if pngs, _ := filepath.Glob(filepath.Join(runDir, "*.png")); len(pngs) > 0 {
		t.Errorf("graphs drawn of nothing: %v", pngs)
	}
	if code, _, stderr := runCLI("compare", runDir, runDir); code != exitBadInput || !strings.Contains(stderr, "measured nothing") {
		t.Errorf("compare: exit %d\n%s", code, stderr)
	}
}
