package steps

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/perfrunner/runner/target"
	"github.com/perfrunner/runner/target/fake"
)

// fakeEnv returns the environment of a step in a run whose target is f.
func fakeEnv(t *testing.T, kind target.Kind, f *fake.Target) *Env {
	t.Helper()
	dir := t.TempDir()
	shared := NewShared(RunInfo{Dir: dir, Scenario: "s", Target: kind, ScenarioDir: dir})
	shared.SetTarget(f)
	return &Env{
		RunDir:  dir,
		StepDir: filepath.Join(dir, "steps", "setup-00-step"),
		Target:  kind,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Attempt: 1,
		Output:  io.Discard,
		Status:  func(string) {},
		Live:    func(LoadStatus) {},
		Shared:  shared,
	}
}

// undoEnv is the environment an Undo gets in the run itself.
func undoEnv(env *Env, f *fake.Target) *UndoEnv {
	return &UndoEnv{RunDir: env.RunDir, StepDir: env.StepDir, Log: env.Log, Target: f, StopReceiver: env.Shared.StopReceiver}
}

// TestHelmInstallAndUndo installs a shipped chart on a fake target with
// values merged from a file, inline values and --set, in the run's
// namespace, and undoes it from what Creates journaled.
func TestHelmInstallAndUndo(t *testing.T) {
	f := &fake.Target{RunNamespace: "perf"}
	env := fakeEnv(t, target.Kubernetes, f)
	if err := os.WriteFile(filepath.Join(env.Shared.Info.ScenarioDir, "v.yaml"), []byte("name: from-file\nreplicas: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := &HelmInstall{Release: "imc", Chart: "in-memory-channel", ValuesFiles: []string{"v.yaml"}, Values: map[string]any{"replicas": 2}, Set: []string{"name=from-set"}}
	res, err := step.Creates(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].ID() != "helm.install/perf/imc" {
		t.Fatalf("Creates = %+v", res)
	}
	if err := step.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 1 || calls[0].Method != "Install" || calls[0].Release != "imc" || calls[0].Namespace != "perf" || calls[0].Chart != "in-memory-channel" {
		t.Fatalf("calls = %+v", calls)
	}
	if got := calls[0].Values; got["name"] != "from-set" || got["replicas"] != 2 {
		t.Errorf("values = %v, want name from --set and replicas inline", got)
	}
	if got := f.Installed(); !reflect.DeepEqual(got, []string{"perf/imc"}) {
		t.Errorf("installed = %v", got)
	}
	kind, _ := Lookup("helm.install")
	if err := kind.Undo(context.Background(), undoEnv(env, f), res[0]); err != nil {
		t.Fatal(err)
	}
	if got := f.Installed(); len(got) != 0 {
		t.Errorf("after undo, installed = %v", got)
	}
}

// TestHelmInstallFailsAsTheTargetDoes passes the target's error through,
// ErrNotCreated included, so that the engine lets the release be.
func TestHelmInstallFailsAsTheTargetDoes(t *testing.T) {
	f := &fake.Target{Errors: map[string]error{"Install": target.ErrNotCreated}}
	env := fakeEnv(t, target.Local, f)
	err := (&HelmInstall{Release: "k", Chart: "kafka"}).Run(context.Background(), env)
	if !errors.Is(err, ErrNotCreated) {
		t.Fatalf("Run = %v, want ErrNotCreated", err)
	}
	if got := f.Installed(); len(got) != 0 {
		t.Errorf("installed = %v", got)
	}
}

// TestUndoAfterTheProcessDied: in runner cleanup, a local release died with
// its runner (nothing to do), while a release on a target that cannot be
// reached again is an error.
func TestUndoAfterTheProcessDied(t *testing.T) {
	kind, _ := Lookup("helm.install")
	for recorded, wantErr := range map[target.Kind]bool{target.Local: false, target.Kubernetes: true} {
		undo, _ := json.Marshal(releaseUndo{Release: "r", Namespace: "ns", Target: recorded})
		err := kind.Undo(context.Background(), &UndoEnv{}, Resource{Kind: "helm.install", Name: "ns/r", Undo: undo})
		if (err != nil) != wantErr {
			t.Errorf("undo of a %s release in cleanup: %v", recorded, err)
		}
	}
}

// TestKubeApplyAndDelete applies an inline manifest on a fake cluster,
// journals each object, and deletes it through kube.delete's Undo.
func TestKubeApplyAndDelete(t *testing.T) {
	f := &fake.Target{RunNamespace: "perf"}
	env := fakeEnv(t, target.Kubernetes, f)
	step := &KubeApply{Manifests{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n"}}
	res, err := step.Creates(env)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("Creates = %+v", res)
	}
	if err := step.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if got := f.Applied(); !reflect.DeepEqual(got, []string{"perf/configmap/c", "perf/namespace/other"}) {
		t.Fatalf("applied = %v", got)
	}
	kind, _ := Lookup("kube.apply")
	if err := kind.Undo(context.Background(), undoEnv(env, f), res[0]); err != nil {
		t.Fatal(err)
	}
	if got := f.Applied(); len(got) != 1 {
		t.Errorf("after undo, applied = %v", got)
	}
}

// TestClusterKindsNeedACluster: a target that is no cluster refuses the
// kube kinds with a message that says what is needed.
func TestClusterKindsNeedACluster(t *testing.T) {
	env := fakeEnv(t, target.Local, nil)
	env.Shared.SetTarget(localOnly{&fake.Target{}})
	err := (&KubeApply{Manifests{Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}}).Run(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "kube.apply needs a Kubernetes cluster (--target kubernetes); target local has none") {
		t.Fatalf("Run = %v", err)
	}
	wait := &KubeWait{For: []string{"deployment/a"}}
	if err := wait.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "need a cluster") {
		t.Fatalf("kube.wait on objects without a cluster: %v", err)
	}
}

// localOnly hides a fake's cluster methods: a target like local.
type localOnly struct{ target.Target }

// TestSinksResolveByKind: claimed sinks come from the run, the others from
// the target, and an unknown name lists the known ones.
func TestSinksResolveByKind(t *testing.T) {
	f := &fake.Target{Sinks: map[string]string{"service/app:8080": "http://127.0.0.1:1/"}}
	env := fakeEnv(t, target.Kubernetes, f)
	if err := env.Shared.ClaimSink("channel/perf", "http://127.0.0.1:2/"); err != nil {
		t.Fatal(err)
	}
	if err := env.Shared.ClaimSink("channel/perf", "http://127.0.0.1:3/"); err == nil {
		t.Error("a sink was claimed twice")
	}
	for name, want := range map[string]string{"channel/perf": "http://127.0.0.1:2/", "service/app:8080": "http://127.0.0.1:1/"} {
		if got, err := env.Shared.Sink(name); err != nil || got != want {
			t.Errorf("Sink(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := env.Shared.Sink("broker/default"); err == nil || !strings.Contains(err.Error(), "known: [channel/perf]") {
		t.Errorf("an unknown sink: %v", err)
	}
}
