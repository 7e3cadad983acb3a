package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/target"
	"github.com/perfrunner/runner/twins"
)

// platformFile is a platform whose setup makes DIR/made (undone by
// removing it), with a setup step that fails when FAIL is "true".
const platformFile = `name: plat
setup:
  - name: make
    exec: {command: [touch, DIR/made], undo: [rm, -f, DIR/made]}
  - name: maybe fail
    exec: {command: ["FAIL"]}
provides:
  - object: deployment/x
    namespace: ns
teardown:
  - name: remove
    exec: {command: [rm, -f, DIR/made]}
  - name: marker
    exec: {command: [touch, DIR/teardown-ran]}
`

func runPlatform(t *testing.T, dir string, action PlatformAction, fail bool, open target.Opener) (*Runner, error) {
	t.Helper()
	src := strings.ReplaceAll(platformFile, "DIR", dir)
	src = strings.ReplaceAll(src, "FAIL", map[bool]string{true: "false", false: "true"}[fail])
	sc, err := scenario.Decode("plat.yaml", []byte(src), scenario.Options{})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if open == nil {
		open = twins.Open
	}
	r := &Runner{Scenario: sc, OutDir: filepath.Join(dir, "results"), Version: "test", Open: open, Platform: action}
	return r, r.Run(context.Background())
}

// An install keeps what its setup made and runs no teardown; an install
// that fails removes what it made; an uninstall runs every teardown step.
func TestPlatformInstallKeepsAndUninstallRemoves(t *testing.T) {
	dir := t.TempDir()
	r, err := runPlatform(t, dir, PlatformInstall, false, nil)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if !exists(filepath.Join(dir, "made")) || exists(filepath.Join(dir, "teardown-ran")) {
		t.Errorf("install: made %v, teardown ran %v", exists(filepath.Join(dir, "made")), exists(filepath.Join(dir, "teardown-ran")))
	}
	if st := stepStatuses(r.Record()); st["remove"] != "skipped" || r.Record().Status != "succeeded" {
		t.Errorf("install: steps %v, status %s", st, r.Record().Status)
	}
	if !strings.Contains(r.Dir(), filepath.Join("plat", "platform-install")) {
		t.Errorf("install's directory: %s", r.Dir())
	}

	r, err = runPlatform(t, dir, PlatformUninstall, false, nil)
	if err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if exists(filepath.Join(dir, "made")) || !exists(filepath.Join(dir, "teardown-ran")) {
		t.Errorf("uninstall: made %v, teardown ran %v", exists(filepath.Join(dir, "made")), exists(filepath.Join(dir, "teardown-ran")))
	}
	if st := stepStatuses(r.Record()); st["make"] != "" {
		t.Errorf("uninstall ran setup: %v", st)
	}

	os.Remove(filepath.Join(dir, "teardown-ran"))
	_, err = runPlatform(t, dir, PlatformInstall, true, nil)
	if err == nil {
		t.Fatal("a failing install succeeded")
	}
	if exists(filepath.Join(dir, "made")) || !exists(filepath.Join(dir, "teardown-ran")) {
		t.Errorf("failed install: made %v, teardown ran %v", exists(filepath.Join(dir, "made")), exists(filepath.Join(dir, "teardown-ran")))
	}
}

// checker is the local target with Check answering from missing: the
// objects that are not there.
type checker struct {
	target.Target
	missing map[string]bool
}

func (c checker) Check(_ context.Context, w target.WaitSpec) error {
	if c.missing[w.Objects[0]] {
		return target.Missing("not found")
	}
	return nil
}

// A scenario whose required platform is missing stops before its setup
// with an error naming each missing object and the install command; with
// the platform there, it runs and run.json records the checks.
func TestMissingPlatformStopsTheRunBeforeSetup(t *testing.T) {
	dir := t.TempDir()
	plat := filepath.Join(dir, "plat.yaml")
	if err := os.WriteFile(plat, []byte(strings.ReplaceAll(strings.ReplaceAll(platformFile, "DIR", dir), "FAIL", "true")), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `name: s
requires:
  - platform: plat.yaml
  - name: its own check
    object: configmap/c
    namespace: ns
setup:
  - name: make
    exec: {command: [touch, ` + dir + `/setup-ran]}
measure:
  - name: wait
    sleep: {duration: 1ms}
`
	run := func(missing ...string) (*Runner, error) {
		sc, err := scenario.Decode(filepath.Join(dir, "s.yaml"), []byte(src), scenario.Options{})
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		m := map[string]bool{}
		for _, o := range missing {
			m[o] = true
		}
		open := func(run target.Run) (target.Target, error) {
			tg, err := twins.Open(run)
			return checker{Target: tg, missing: m}, err
		}
		r := &Runner{Scenario: sc, OutDir: filepath.Join(dir, "results"), Version: "test", Open: open}
		return r, r.Run(context.Background())
	}
	r, err := run("deployment/x", "configmap/c")
	var re *RequirementError
	if !errors.As(err, &re) {
		t.Fatalf("Run error = %v, want a RequirementError", err)
	}
	msg := re.Error()
	for _, want := range []string{"✗ deployment/x in ns: not found", "(platform plat)", "✗ its own check", "runner platform install " + plat} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if exists(filepath.Join(dir, "setup-ran")) || stepStatuses(r.Record())["make"] != "skipped" {
		t.Errorf("setup ran without its platform: %v", stepStatuses(r.Record()))
	}

	r, err = run()
	if err != nil {
		t.Fatalf("with the platform: %v", err)
	}
	if rq := r.Record().Requires; len(rq) != 2 || !rq[0].OK || rq[0].Platform != "plat" || !rq[1].OK || rq[1].Platform != "" {
		t.Errorf("run.json's requires: %+v", rq)
	}
}
