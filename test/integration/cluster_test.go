//go:build integration

// Package integration runs the runner against a real Kubernetes control
// plane (make cluster-up): RUNNER_TEST_KUBECONFIG names its kubeconfig.
// Every test runs the runner binary as a user would, then counts, through
// the API server, the objects carrying the run label and the Helm releases
// left behind: the count must be zero.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/kube"
	"github.com/perfrunner/runner/results"
)

var (
	runnerBin  string
	kubeconfig string
	restConfig *rest.Config
)

func TestMain(m *testing.M) {
	kubeconfig = os.Getenv("RUNNER_TEST_KUBECONFIG")
	if kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "RUNNER_TEST_KUBECONFIG is not set: run make cluster-up, then make test-integration")
		os.Exit(1)
	}
	var err error
	if restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	restConfig.QPS, restConfig.Burst = 50, 100
	restConfig.WarningHandler = rest.NoWarnings{}
	dir, err := os.MkdirTemp("", "runner-integration")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// make test-integration hands over the binary of the build make image
	// put in the real node's image, whose agents check that the runner
	// driving them is of their own build.
	if runnerBin = os.Getenv("RUNNER_TEST_BINARY"); runnerBin == "" {
		runnerBin = filepath.Join(dir, "runner")
		build := exec.Command("go", "build", "-o", runnerBin, "github.com/perfrunner/runner/cmd/runner")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build runner:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run is one runner process.
type run struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	done   chan struct{}
	exit   int
	ns     string
	outDir string
}

// start starts `runner exec testdata/cluster.yaml` on the test cluster in a
// namespace of its own, with extra arguments.
func start(t *testing.T, ns string, args ...string) *run {
	t.Helper()
	return startScenario(t, "testdata/cluster.yaml", ns, args...)
}

// startScenario is start for another scenario file.
func startScenario(t *testing.T, file, ns string, args ...string) *run {
	t.Helper()
	r := &run{ns: ns, outDir: t.TempDir(), lines: make(chan string, 1000), done: make(chan struct{})}
	full := append([]string{"exec", file, "--target", "kubernetes", "--kubeconfig", kubeconfig, "-n", ns, "--out", r.outDir}, args...)
	r.cmd = exec.Command(runnerBin, full...)
	pr, pw := io.Pipe()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.mu.Lock()
			r.out.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		err := r.cmd.Wait()
		pw.Close()
		r.exit = r.cmd.ProcessState.ExitCode()
		if err != nil && r.exit == -1 {
			r.exit = -1 // killed by a signal
		}
		close(r.done)
	}()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.done })
	return r
}

func (r *run) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// waitLine waits for an output line containing s.
func (r *run) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l := <-r.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-r.done:
			if strings.Contains(r.output(), s) {
				return
			}
			t.Fatalf("the runner exited (%d) before printing %q:\n%s", r.exit, s, r.output())
		case <-deadline:
			t.Fatalf("no line %q within 2 minutes:\n%s", s, r.output())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (r *run) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
		return r.exit
	case <-time.After(5 * time.Minute):
		t.Fatalf("the runner did not exit within 5 minutes:\n%s", r.output())
		return 0
	}
}

var runDirLine = regexp.MustCompile(`→ (\S+)`)

// dir returns the run directory the runner announced.
func (r *run) dir(t *testing.T) string {
	t.Helper()
	m := runDirLine.FindStringSubmatch(r.output())
	if m == nil {
		t.Fatalf("no run directory in the output:\n%s", r.output())
	}
	return m[1]
}

// runRecord is what the tests read of run.json.
type runRecord struct {
	Status string `json:"status"`
	RunID  string `json:"run_id"`
	Steps  []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"steps"`
}

func readRecord(t *testing.T, dir string) runRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// leftovers lists, through the API server, every object carrying the run
// label (any run), every Helm release record, and namespace ns if it
// exists.
func leftovers(t *testing.T, ns string) []string {
	return leftoversOf(t, ns, "runner.perf/run-id")
}

// leftoversOf is leftovers for the objects selector matches.
func leftoversOf(t *testing.T, ns, selector string) []string {
	t.Helper()
	ctx := context.Background()
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var left []string
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !contains(r.Verbs, "list") {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				t.Fatalf("list %s: %v", r.Name, err)
			}
			for _, it := range items.Items {
				left = append(left, fmt.Sprintf("%s %s/%s", r.Name, it.GetNamespace(), it.GetName()))
			}
		}
	}
	cs := kubernetes.NewForConfigOrDie(restConfig)
	releases, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm," + selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range releases.Items {
		left = append(left, "helm release "+s.Namespace+"/"+s.Labels["name"])
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		left = append(left, "namespace "+ns)
	}
	return left
}

// assertRunLeftNothing fails the test if anything of run r is left, with
// another run's objects still in the cluster.
func assertRunLeftNothing(t *testing.T, r *run) {
	t.Helper()
	id := readRecord(t, r.dir(t)).RunID
	if id == "" {
		t.Fatal("no run id")
	}
	if left := leftoversOf(t, r.ns, "runner.perf/run-id="+id); len(left) > 0 {
		t.Errorf("run %s left: %s", id, strings.Join(left, "; "))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// assertClean fails the test unless nothing is left, and logs the count.
func assertClean(t *testing.T, ns string) {
	t.Helper()
	left := leftovers(t, ns)
	t.Logf("leftover objects labelled runner.perf/run-id, Helm releases and the run's namespace: %d", len(left))
	if len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, "; "))
	}
}

// markWidgetReady sets the Widget's Ready condition once it exists, as its
// controller would; it gives up after a minute.
func markWidgetReady(t *testing.T, ns string) <-chan error {
	done := make(chan error, 1)
	go func() {
		dyn := dynamic.NewForConfigOrDie(restConfig)
		res := dyn.Resource(schema.GroupVersionResource{Group: "perf.test", Version: "v1", Resource: "widgets"}).Namespace(ns)
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			w, err := res.Get(context.Background(), "w1", metav1.GetOptions{})
			if err == nil {
				_ = unstructured.SetNestedSlice(w.Object, []any{map[string]any{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "set by the test"}}, "status", "conditions")
				_, err = res.UpdateStatus(context.Background(), w, metav1.UpdateOptions{})
				if err == nil {
					done <- nil
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		done <- fmt.Errorf("the widget never appeared")
	}()
	return done
}

func stepStatus(rec runRecord, name string) (string, string) {
	for _, s := range rec.Steps {
		if s.Name == name {
			return s.Status, s.Error
		}
	}
	return "", ""
}

func TestInstallWaitUpgradeAndCustomResourceReady(t *testing.T) {
	ns := "perf-it-ok"
	ready := markWidgetReady(t, ns)
	r := start(t, ns, "--set", "job=true")
	r.waitLine(t, `step "hold" (sleep): started`)
	// Every object of the release carries the run label while it runs.
	cs := kubernetes.NewForConfigOrDie(restConfig)
	dep, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := readRecord(t, r.dir(t))
	if dep.Labels["runner.perf/run-id"] != rec.RunID || rec.RunID == "" {
		t.Errorf("deployment labels %v, run id %q", dep.Labels, rec.RunID)
	}
	if dep.Status.ReadyReplicas != 3 {
		t.Errorf("after helm.upgrade: %d ready replicas, want 3", dep.Status.ReadyReplicas)
	}
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	if rec := readRecord(t, r.dir(t)); rec.Status != "succeeded" {
		t.Errorf("status %s", rec.Status)
	}
	if !strings.Contains(r.output(), "target kubernetes: context kwok-runner-test, server https://") {
		t.Errorf("the target is not named:\n%s", r.output())
	}
	assertClean(t, ns)
}

func TestFailingMeasureStillUninstalls(t *testing.T) {
	ns := "perf-it-fail"
	ready := markWidgetReady(t, ns)
	r := start(t, ns, "--set", "measureCommand=exit 7")
	if code := r.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, r.output())
	}
	<-ready
	dir := r.dir(t)
	if st, _ := stepStatus(readRecord(t, dir), "check"); st != "failed" {
		t.Errorf("check: %s", st)
	}
	// The failure brought the namespace's events into the run directory.
	events, err := os.ReadFile(filepath.Join(dir, "cluster", "events-"+ns+".txt"))
	if err != nil || !strings.Contains(string(events), "deployment/app") {
		t.Errorf("events: %v\n%s", err, events)
	}
	assertClean(t, ns)
}

func TestStepTimeoutNamesWhatWasNotReady(t *testing.T) {
	ns := "perf-it-timeout"
	r := start(t, ns, "--set", "widgetTimeout=2s")
	if code := r.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, r.output())
	}
	st, msg := stepStatus(readRecord(t, r.dir(t)), "widget ready")
	if st != "timed-out" || !strings.Contains(msg, "widget/w1 in "+ns+" not ready: no status conditions yet") {
		t.Errorf("widget ready: %s: %s", st, msg)
	}
	assertClean(t, ns)
}

func TestInstallThatNeverGetsReadyIsUndone(t *testing.T) {
	ns := "perf-it-pending"
	r := start(t, ns, "--set", "unschedulable=true", "--set", "installTimeout=3s")
	if code := r.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, r.output())
	}
	st, msg := stepStatus(readRecord(t, r.dir(t)), "install app")
	if st != "timed-out" || !strings.Contains(msg, "deployment/app in "+ns+" not ready: 0 of 2 replicas available") {
		t.Errorf("install app: %s: %s", st, msg)
	}
	assertClean(t, ns)
}

func TestInterrupts(t *testing.T) {
	cases := []struct {
		name, phase, at string
		args            []string
	}{
		{"setup", "setup", `step "widget ready" (kube.wait): started`, nil},
		{"measure", "measure", `step "hold" (sleep): started`, []string{"--set", "hold=1m"}},
		{"teardown", "teardown", `step "teardown hold" (sleep): started`, []string{"--set", "teardownHold=3s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := "perf-it-int-" + c.name
			ready := make(<-chan error)
			if c.phase != "setup" {
				ready = markWidgetReady(t, ns)
			}
			r := start(t, ns, c.args...)
			r.waitLine(t, c.at)
			if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if code := r.wait(t); code != 130 {
				t.Fatalf("exit %d, want 130:\n%s", code, r.output())
			}
			if c.phase != "setup" {
				<-ready
			}
			if rec := readRecord(t, r.dir(t)); rec.Status != "interrupted" {
				t.Errorf("status %s", rec.Status)
			}
			assertClean(t, ns)
		})
	}
}

// killDuringMeasure starts a run in ns and kills it with SIGKILL while it
// holds its pace, with everything installed.
func killDuringMeasure(t *testing.T, ns string) string {
	t.Helper()
	ready := markWidgetReady(t, ns)
	r := start(t, ns, "--set", "hold=1m")
	r.waitLine(t, `step "hold" (sleep): started`)
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	left := leftovers(t, ns)
	if len(left) == 0 {
		t.Fatal("kill -9 left nothing: the test proves nothing")
	}
	t.Logf("after kill -9: %d objects, releases and namespaces left", len(left))
	return r.dir(t)
}

// leaseExpiry waits out a killed run's Lease.
const leaseExpiry = 16 * time.Second

func TestKilledRunIsRefusedThenCleanedUp(t *testing.T) {
	ns := "perf-it-killed"
	ready := markWidgetReady(t, ns)
	first := start(t, ns, "--set", "hold=1m")
	first.waitLine(t, `step "hold" (sleep): started`)
	<-ready

	// Past a Lease's lifetime, a run still going on has renewed its
	// Lease: a new run sees it going on, refuses, and installs nothing.
	time.Sleep(leaseExpiry)
	other := start(t, "perf-it-second")
	if code := other.wait(t); code != 1 || !strings.Contains(other.output(), "another run is going on in this cluster: runner.perf/run-id=") {
		t.Fatalf("second run: exit %d:\n%s", code, other.output())
	}
	if st, _ := stepStatus(readRecord(t, other.dir(t)), "install app"); st != "skipped" {
		t.Errorf("second run's install: %s", st)
	}
	assertRunLeftNothing(t, other)

	// Killed, its Lease lapses: it is an unfinished run.
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t)
	left := leftovers(t, ns)
	if len(left) == 0 {
		t.Fatal("kill -9 left nothing: the test proves nothing")
	}
	t.Logf("after kill -9: %d objects, releases and namespaces left", len(left))
	time.Sleep(leaseExpiry)
	third := start(t, "perf-it-third")
	if code := third.wait(t); code != 1 || !strings.Contains(third.output(), "objects of unfinished earlier runs") || !strings.Contains(third.output(), "--clean-stale") {
		t.Fatalf("third run: exit %d:\n%s", code, third.output())
	}
	assertRunLeftNothing(t, third)

	out, err := exec.Command(runnerBin, "cleanup", first.dir(t), "--kubeconfig", kubeconfig).CombinedOutput()
	if err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "objects labelled runner.perf/run-id=") {
		t.Errorf("cleanup output:\n%s", out)
	}
	assertClean(t, ns)
}

// --clean-stale in the namespace of the killed run: the sweep takes the
// namespace, with the new run's Lease in it; the new run makes both again
// and holds its Lease while it runs.
func TestCleanStaleRemovesAnEarlierRun(t *testing.T) {
	ns := "perf-it-stale"
	killDuringMeasure(t, ns)
	time.Sleep(leaseExpiry)

	next := start(t, ns, "--clean-stale", "--set", "hold=12s")
	// The killed run's widget goes first: only then is the new one marked.
	next.waitLine(t, "--clean-stale: deleted")
	ready := markWidgetReady(t, ns)
	next.waitLine(t, `step "hold" (sleep): started`)
	<-ready
	time.Sleep(6 * time.Second) // a renewal after the sweep
	id := readRecord(t, next.dir(t)).RunID
	cs := kubernetes.NewForConfigOrDie(restConfig)
	lease, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "runner-"+strings.ToLower(id), metav1.GetOptions{})
	if err != nil || lease.Spec.RenewTime == nil || time.Since(lease.Spec.RenewTime.Time) > 15*time.Second {
		t.Errorf("the run's lease while it measures: %v %+v", err, lease)
	}
	if code := next.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, next.output())
	}
	if !strings.Contains(next.output(), "--clean-stale: deleted") {
		t.Errorf("output:\n%s", next.output())
	}
	assertClean(t, ns)
}

// In a namespace the run did not create, the run removes what it made —
// hook objects Helm leaves included — and nothing else; a release of the
// same name that was there before is left alone.
func TestExistingNamespaceKeepsWhatWasThere(t *testing.T) {
	ctx := context.Background()
	ns := "perf-it-existing"
	cs := kubernetes.NewForConfigOrDie(restConfig)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	appObjects := func() []string {
		var names []string
		cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cms.Items {
			if c.Name != "kube-root-ca.crt" && c.Name != "theirs" {
				names = append(names, "configmap/"+c.Name)
			}
		}
		deps, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			names = append(names, "deployment/"+d.Name)
		}
		svcs, _ := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		for _, s := range svcs.Items {
			names = append(names, "service/"+s.Name)
		}
		secrets, _ := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		for _, s := range secrets.Items {
			names = append(names, "secret/"+s.Name)
		}
		return names
	}

	ready := markWidgetReady(t, ns)
	r := start(t, ns, "--set", "hook=true")
	r.waitLine(t, `step "hold" (sleep): started`)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "app-hook", metav1.GetOptions{})
	if err != nil || cm.Labels["runner.perf/run-id"] == "" {
		t.Errorf("the hook's config map is not labelled: %v %v", err, cm.Labels)
	}
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	<-ready
	if left := appObjects(); len(left) > 0 {
		t.Errorf("left in %s: %v", ns, left)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("an object the run did not make is gone: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("the namespace the run did not make is gone: %v", err)
	}

	// A release named as the scenario's, not the run's: the install fails,
	// and teardown leaves it as it was.
	theirs := &helm.Client{Kubeconfig: kubeconfig}
	chart, err := helm.LoadDir("testdata/charts/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := theirs.Install(ctx, chart, "app", ns, map[string]any{"replicas": 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = theirs.Uninstall("app", ns, time.Minute) })
	r = start(t, ns)
	if code := r.wait(t); code != 1 || !strings.Contains(r.output(), "a release of that name exists already: app in "+ns) {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	if rel, err := theirs.Get("app", ns); err != nil || rel.Revision != 1 {
		t.Errorf("their release: %v %+v", err, rel)
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{}); err != nil {
		t.Errorf("their deployment: %v", err)
	}
}

func TestBadClusterIsAClearErrorBeforeAnything(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(runnerBin, "exec", "testdata/cluster.yaml", "--target", "kubernetes", "--kubeconfig", "/nonexistent/kubeconfig", "--out", out)
	b, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(b), "/nonexistent/kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d: %s", cmd.ProcessState.ExitCode(), b)
	}

	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: gone, context: {cluster: c, user: u}}]
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(runnerBin, "exec", "testdata/cluster.yaml", "--target", "kubernetes", "--kubeconfig", unreachable, "--out", out)
	b, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "cannot reach the API server https://127.0.0.1:1 of context gone") {
		t.Errorf("unreachable: exit %d: %s", cmd.ProcessState.ExitCode(), b)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("a run directory was created: %v", entries)
	}
}

// A matrix on kubernetes holds a Lease in the cluster: one held by another
// machine refuses the matrix before any cell runs; once free, the cells run
// one after another and leave nothing, the Lease included.
func TestMatrixLockIsALeaseInTheCluster(t *testing.T) {
	ctx := context.Background()
	ns := "perf-it-matrix"
	cl, err := kube.Connect(ctx, kube.Access{Kubeconfig: kubeconfig, Namespace: ns}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := kube.Lock(ctx, cl, "runner-matrix", "another machine", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	args := []string{"matrix", "testdata/matrix.yaml", "--kubeconfig", kubeconfig, "-n", ns, "--out", out}
	cmd := exec.Command(runnerBin, args...)
	b, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(b), "another matrix is running on target kubernetes") || !strings.Contains(string(b), "another machine") {
		t.Fatalf("exit %d:\n%s", cmd.ProcessState.ExitCode(), b)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("the refused matrix wrote %v", entries)
	}
	unlock()

	// The widget of each cell is marked ready as the cells come: once a
	// widget is marked, the next is waited for after this one is gone.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		dyn := dynamic.NewForConfigOrDie(restConfig)
		widgets := dyn.Resource(schema.GroupVersionResource{Group: "perf.test", Version: "v1", Resource: "widgets"}).Namespace(ns)
		for {
			select {
			case <-stop:
				return
			case err := <-markWidgetReady(t, ns):
				if err != nil {
					return
				}
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := widgets.Get(context.Background(), "w1", metav1.GetOptions{}); apierrors.IsNotFound(err) {
					break
				}
			}
		}
	}()
	cmd = exec.Command(runnerBin, args...)
	b, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	// Exit 0 means every cell succeeded; the index says how many ran.
	indexes, _ := filepath.Glob(filepath.Join(out, "matrix", "cluster-matrix", "*", "index.json"))
	if len(indexes) != 1 {
		t.Fatalf("index files: %v", indexes)
	}
	raw, err := os.ReadFile(indexes[0])
	if err != nil {
		t.Fatal(err)
	}
	var ix struct {
		Cells []struct{ Status string } `json:"cells"`
	}
	if err := json.Unmarshal(raw, &ix); err != nil || len(ix.Cells) != 2 || ix.Cells[0].Status != "succeeded" || ix.Cells[1].Status != "succeeded" {
		t.Errorf("index: %v %s", err, raw)
	}
	assertClean(t, ns)
	if _, err := cl.Client.CoordinationV1().Leases(kube.LockNamespace).Get(ctx, "runner-matrix", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the matrix's lease: %v", err)
	}
}

// A load step on kubernetes reaches a Service by a port-forward through the
// API server (client-go, as kubectl port-forward): the simulated pod
// answers with this machine's 127.0.0.1:18999 (test/cluster/kwok.yaml),
// where the run's own receiver listens, so every event goes out through the
// cluster's API server and comes back to be measured.
func TestLoadThroughAPortForward(t *testing.T) {
	ns := "perf-it-sink"
	_, sum, _ := execSmoke(t, "sink", ns)
	c := sum.Totals
	if c.Intended != 100 || c.Accepted != 100 || c.Delivered != 100 || sum.Totals.Lost != 0 || c.SendFailures != 0 {
		t.Errorf("through the port-forward: %+v, lost %d", c, sum.Totals.Lost)
	}
	assertClean(t, ns)
}

// execSmoke runs testdata/<name>.yaml's pace set smoke on the test cluster
// in namespace ns, and returns its run directory, summary and output.
func execSmoke(t *testing.T, name, ns string) (string, results.Summary, []byte) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(runnerBin, "exec", "testdata/"+name+".yaml", "--target", "kubernetes", "--kubeconfig", kubeconfig, "-n", ns, "--out", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, name, "smoke", "*"))
	if len(dirs) != 1 {
		t.Fatalf("run directories: %v", dirs)
	}
	sum, err := results.ReadSummary(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	return dirs[0], sum, b
}

// startAgent starts `runner agent` on this machine, named as pod name, with
// its control port on control and its receiver on receive; it stops with
// the test.
func startAgent(t *testing.T, name string, control, receive int) {
	t.Helper()
	cmd := exec.Command(runnerBin, "agent", "--listen", fmt.Sprintf("127.0.0.1:%d", control), "--receive", fmt.Sprintf("127.0.0.1:%d", receive))
	cmd.Env = append(os.Environ(), "POD_NAME="+name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	// It prints where it listens once it serves.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("agent %s: %q %v", name, line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
}

// A load on kubernetes sent by the pods of the shipped perf-agents chart:
// the runner finds the release's two pods, reaches each one's control port
// by a port-forward through the API server, checks that each is of its
// own build, sends the load through both (each its share of one event
// sequence) and pulls the receipts of their receivers into one
// measurement. The simulated pods stand for agent processes on this
// machine (test/cluster/kwok.yaml).
func TestAgentPodsSendAndReceive(t *testing.T) {
	startAgent(t, "perf-0", 18991, 18981)
	startAgent(t, "perf-1", 18992, 18982)
	ns := "perf-it-agents"
	dir, sum, b := execSmoke(t, "agents", ns)
	c := sum.Totals
	if c.Intended != 200 || c.Accepted != 200 || c.Delivered != 200 || c.Duplicates != 0 || sum.Totals.Lost != 0 || c.SendFailures != 0 || c.Dropped != 0 {
		t.Errorf("sent and received by the agents: %+v, lost %d\n%s", c, sum.Totals.Lost, b)
	}
	parts := map[string][]string{}
	for _, a := range sum.Agents {
		parts[a.Load] = append(parts[a.Load], a.Agent)
		if a.Error != "" {
			t.Errorf("agent %s of %s: %s", a.Agent, a.Load, a.Error)
		}
	}
	// A load is named by its step's directory.
	if fmt.Sprint(parts["measure-00-load"]) != "[perf-0 perf-1]" || fmt.Sprint(parts["receiver/perf"]) != "[perf-0 perf-1]" {
		t.Errorf("agents in the summary: %v", parts)
	}
	rec, err := engine.ReadRunRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Agents) != 2 || rec.Agents[0].Pod != "perf-0" || rec.Agents[1].Image != "runner:integration" || rec.Agents[0].Version == "" {
		t.Errorf("run.json's agents: %+v", rec.Agents)
	}
	assertClean(t, ns)
}
