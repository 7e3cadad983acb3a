//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/results"
)

// realNode is the test cluster's node that runs containers (test/cluster/node.env).
const realNode = "runner-node"

// needRealNode skips a test on a cluster started with REAL_NODE=0, and
// returns the runner's image loaded into the real node.
func needRealNode(t *testing.T) string {
	t.Helper()
	if os.Getenv("RUNNER_TEST_REAL_NODE") == "0" {
		t.Skip("the test cluster has no real node (REAL_NODE=0)")
	}
	image := os.Getenv("RUNNER_TEST_IMAGE")
	if image == "" {
		t.Fatal("RUNNER_TEST_IMAGE is not set: run make test-integration")
	}
	return image
}

// startProbe runs testdata/realnode.yaml in ns with the probe chart in mode.
func startProbe(t *testing.T, ns, mode string, args ...string) *run {
	t.Helper()
	image := needRealNode(t)
	return startScenario(t, "testdata/realnode.yaml", ns, append([]string{"--set", "image=" + image, "--set", "mode=" + mode}, args...)...)
}

// A pod whose readiness probe passes is waited for; kube.logs writes what
// its container printed.
func TestRealPodReadyAndItsLogs(t *testing.T) {
	ns := "perf-it-node-ready"
	r := startProbe(t, ns, "ready")
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	logs, _ := filepath.Glob(filepath.Join(r.dir(t), "steps", "measure-*-logs", "logs", ns, "probe-*", "probe.log"))
	if len(logs) != 1 {
		t.Fatalf("container logs: %v", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "agent listening on http://") {
		t.Errorf("%s: %q", logs[0], b)
	}
	assertClean(t, ns)
}

// A pod whose readiness probe fails never gets ready: the install times
// out naming the pod and the probe's failure, and is undone.
func TestRealPodNeverReadyTimesOut(t *testing.T) {
	ns := "perf-it-node-unready"
	r := startProbe(t, ns, "unready", "--set", "installTimeout=15s")
	if code := r.wait(t); code != 1 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	st, msg := stepStatus(readRecord(t, r.dir(t)), "install probe")
	for _, want := range []string{"timed out", "deployment/probe", "pod probe-", "running, not ready", "Readiness probe failed", ":8089"} {
		if !strings.Contains(msg, want) {
			t.Errorf("install probe (%s) does not say %q: %s", st, want, msg)
		}
	}
	assertClean(t, ns)
}

// A crash-looping container fails the wait before its timeout, quoting
// its last log lines.
func TestRealPodCrashLoopFailsTheWait(t *testing.T) {
	ns := "perf-it-node-crash"
	started := time.Now()
	r := startProbe(t, ns, "crash", "--set", "installTimeout=4m")
	if code := r.wait(t); code != 1 {
		t.Fatalf("exit %d:\n%s", code, r.output())
	}
	st, msg := stepStatus(readRecord(t, r.dir(t)), "install probe")
	for _, want := range []string{"crash-looping (3 restarts, last exit code", "its last log lines:", "/no/such/scenario.yaml: no such file or directory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("install probe (%s) does not say %q: %s", st, want, msg)
		}
	}
	if strings.Contains(msg, "timed out") || time.Since(started) > 3*time.Minute {
		t.Errorf("the wait ran out its time (%s) instead of failing: %s", time.Since(started).Round(time.Second), msg)
	}
	assertClean(t, ns)
}

// A run killed with its pod running leaves the pod; runner cleanup
// removes it, and the kubelet confirms the container stopped: a pod bound
// to a real node is gone from the API only once its node says so.
func TestSweepRemovesRealPods(t *testing.T) {
	ns := "perf-it-node-sweep"
	r := startProbe(t, ns, "ready", "--set", "hold=2m")
	r.waitLine(t, `step "hold" (sleep): started`)
	cs := kubernetes.NewForConfigOrDie(restConfig)
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || !runningOn(pods.Items[0], realNode) {
		t.Fatalf("pods during the hold: %+v", pods.Items)
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if left := leftovers(t, ns); len(left) == 0 {
		t.Fatal("kill -9 left nothing: the test proves nothing")
	}
	out, err := exec.Command(runnerBin, "cleanup", r.dir(t), "--kubeconfig", kubeconfig).CombinedOutput()
	if err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	name := pods.Items[0].Name
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s still there a minute after cleanup", name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertClean(t, ns)
}

func runningOn(p corev1.Pod, node string) bool {
	if p.Spec.NodeName != node || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return len(p.Status.ContainerStatuses) > 0
}

// The shipped direct scenario on the real node: its agent pod sends the
// load to its own receiver through the Service's ClusterIP, by the name
// CoreDNS gives it; every event intended is delivered, the figures come
// from the pod, and run.json names the pod's node and the digest of the
// image make image built.
func TestDirectScenarioOnRealAgentPods(t *testing.T) {
	needRealNode(t)
	ns := "perf-it-node-direct"
	out := t.TempDir()
	cmd := exec.Command(runnerBin, "exec", "../../scenarios/direct.yaml", "--target", "kubernetes", "--kubeconfig", kubeconfig, "-n", ns, "--pace", "200:10", "--out", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "direct", "pace-200x10", "*"))
	if len(dirs) != 1 {
		t.Fatalf("run directories: %v", dirs)
	}
	sum, err := results.ReadSummary(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	c := sum.Totals
	if c.Intended != 2000 || c.Delivered != c.Intended || c.Lost != 0 || c.Duplicates != 0 || c.SendFailures != 0 || c.Dropped != 0 {
		t.Errorf("through the real pod: %+v\n%s", c, b)
	}
	loads := map[string]bool{}
	for _, a := range sum.Agents {
		if a.Agent != "perf-0" || a.Error != "" {
			t.Errorf("agent part: %+v", a)
		}
		loads[a.Load] = true
	}
	if !loads["measure-00-paced-load"] || !loads["receiver/perf"] {
		t.Errorf("the measured load was not sent and received by the agent: %v", loads)
	}
	rec, err := engine.ReadRunRecord(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	digest := imageDigest(t)
	if len(rec.Agents) != 1 || rec.Agents[0].Node != realNode || !strings.HasSuffix(rec.Agents[0].ImageID, "@"+digest) {
		t.Errorf("run.json's agents: %+v; want node %s, image %s", rec.Agents, realNode, digest)
	}
	assertClean(t, ns)
}

// imageDigest is the digest make image printed, read from its OCI layout.
func imageDigest(t *testing.T) string {
	t.Helper()
	layout := os.Getenv("RUNNER_TEST_IMAGE_LAYOUT")
	if layout == "" {
		t.Fatal("RUNNER_TEST_IMAGE_LAYOUT is not set: run make test-integration")
	}
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v %s", layout, err, b)
	}
	return idx.Manifests[0].Digest
}
