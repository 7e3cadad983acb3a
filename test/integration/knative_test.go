//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/perfrunner/runner/engine"
	"github.com/perfrunner/runner/results"
)

const knativePlatform = "../../scenarios/platform/knative-eventing.yaml"

// knativeFlags are the flags that point the Knative platform file at the
// chart and images make knative-images built (test/knative/build.sh).
func knativeFlags(t *testing.T) []string {
	t.Helper()
	needRealNode(t)
	file := os.Getenv("RUNNER_TEST_KNATIVE")
	if file == "" {
		t.Fatal("RUNNER_TEST_KNATIVE is not set: run make test-integration")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// runner runs the runner binary with args against the test cluster and
// returns its exit code and output.
func runner(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(runnerBin, append(args, "--target", "kubernetes", "--kubeconfig", kubeconfig)...)
	b, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), string(b)
}

// The Knative platform on the real node: a scenario that requires it is
// refused before setup while it is missing; installed from the operator's
// chart with Knative's images built here, it serves channel-imc and
// broker-imc, whose events go through the real in-memory channel
// dispatcher and the real multi-tenant broker; runs leave nothing of
// themselves and the platform Ready; uninstalled, it leaves nothing.
func TestKnativePlatformOnTheRealNode(t *testing.T) {
	flags := knativeFlags(t)
	out := t.TempDir()

	// Without the platform: exit 2 before setup, naming what is missing.
	code, msg := runner(t, "exec", "../../scenarios/channel-imc.yaml", "-n", "perf-it-kn-missing", "--pace", "200:2", "--out", out)
	if code != 2 || !strings.Contains(msg, "inmemorychannels.messaging.knative.dev") || !strings.Contains(msg, "runner platform install") {
		t.Fatalf("without the platform: exit %d, want 2 naming what is missing:\n%s", code, msg)
	}
	assertClean(t, "perf-it-kn-missing")

	t.Cleanup(func() {
		start := time.Now()
		if code, msg := runner(t, append([]string{"platform", "uninstall", knativePlatform, "--out", out}, flags...)...); code != 0 {
			t.Errorf("platform uninstall: exit %d:\n%s", code, msg)
		} else {
			t.Logf("platform uninstalled in %s:\n%s", time.Since(start).Round(time.Second), msg)
		}
		assertPlatformGone(t)
	})
	start := time.Now()
	code, msg = runner(t, append([]string{"platform", "install", knativePlatform, "--out", out}, flags...)...)
	if code != 0 {
		t.Fatalf("platform install: exit %d:\n%s", code, msg)
	}
	t.Logf("platform installed in %s", time.Since(start).Round(time.Second))
	assertPlatformReady(t, flags)

	// kube.restart rolls out a new dispatcher and waits for it.
	before := dispatcherPods(t)
	if code, msg := runner(t, "exec", "testdata/restart.yaml", "-n", "perf-it-kn-restart", "--out", out); code != 0 {
		t.Fatalf("restart: exit %d:\n%s", code, msg)
	}
	after := dispatcherPods(t)
	if len(after) != 1 || len(before) != 1 || after[0] == before[0] {
		t.Errorf("the dispatcher's ready pods before the restart %v, after %v", before, after)
	}
	assertClean(t, "perf-it-kn-restart")
	assertPlatformReady(t, flags)

	// The broker's warmup at its default pace (1000/s) overruns the three
	// hops of the broker sharing two cores with everything else here, and
	// its backlog spills into the measured step: it warms up at 200/s.
	for _, sc := range []struct {
		file, name, dispatcher string
		args                   []string
	}{
		{"../../scenarios/channel-imc.yaml", "channel-imc", "imc-dispatcher", []string{"--set", "profileStep=1", "--set", "profileSeconds=3"}},
		{"../../scenarios/broker-imc.yaml", "broker-imc", "mt-broker-ingress", []string{"--set", "warmupPace=200:5"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			ns := "perf-it-kn-" + sc.name
			pods := dispatcherPods(t)
			before := kubeletCPU(t, pods)
			code, msg := runner(t, append([]string{"exec", sc.file, "-n", ns, "--pace", "200:10", "--out", out}, sc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, msg)
			}
			after := kubeletCPU(t, pods)
			t.Logf("%s:\n%s", sc.name, msg)
			dirs, _ := filepath.Glob(filepath.Join(out, sc.name, "pace-200x10", "*"))
			if len(dirs) != 1 {
				t.Fatalf("run directories: %v", dirs)
			}
			sum, err := results.ReadSummary(dirs[0])
			if err != nil {
				t.Fatal(err)
			}
			if c := sum.Totals; c.Intended != 2000 || c.Delivered != c.Intended || c.Lost != 0 || c.SendFailures != 0 || c.Dropped != 0 {
				t.Errorf("through Knative: %+v", c)
			}
			rec, err := engine.ReadRunRecord(dirs[0])
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range rec.SUT {
				if p.Namespace == "knative-eventing" && strings.HasPrefix(p.Pod, sc.dispatcher+"-") {
					found = true
					if p.Node != realNode || !strings.HasPrefix(p.Image, "runner.local/knative/eventing/") || !strings.Contains(p.ImageID, "@sha256:") {
						t.Errorf("run.json's %s: %+v", sc.dispatcher, p)
					}
				}
			}
			if !found {
				t.Errorf("run.json names no %s pod: %+v", sc.dispatcher, rec.SUT)
			}
			if len(rec.Requires) == 0 {
				t.Errorf("run.json records no requirement checked")
			}
			for _, r := range rec.Requires {
				if !r.OK || r.Platform != "knative-eventing" {
					t.Errorf("requirement: %+v", r)
				}
			}
			if sc.name == "channel-imc" {
				assertObserved(t, dirs[0], sum, after-before)
			}
			assertClean(t, ns)
			assertPlatformReady(t, flags)
		})
	}
}

// kubeletCPU reads the CPU counter of the dispatcher pods' containers from
// the real node's kubelet (its resource metrics, through the API server),
// and returns their sum in CPU seconds.
func kubeletCPU(t *testing.T, pods []string) float64 {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(restConfig)
	// The kubelet's figures come from cAdvisor, refreshed every few
	// seconds: wait for a fresh one, so that the counter covers what came
	// just before.
	start := time.Now()
	for {
		body, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", realNode, "proxy/metrics/resource").DoRaw(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		var oldest time.Time
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "container_cpu_usage_seconds_total{") {
				continue
			}
			for _, p := range pods {
				if strings.Contains(line, `pod="`+p+`"`) {
					f := strings.Fields(line[strings.LastIndex(line, "}")+1:])
					v, err1 := strconv.ParseFloat(f[0], 64)
					ms, err2 := strconv.ParseInt(f[1], 10, 64)
					if err1 != nil || err2 != nil {
						t.Fatalf("resource metrics line %q", line)
					}
					sum += v
					if at := time.UnixMilli(ms); oldest.IsZero() || at.Before(oldest) {
						oldest = at
					}
				}
			}
		}
		if oldest.After(start) {
			return sum
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the kubelet's readings of %v stayed older than %s", pods, start)
		}
		time.Sleep(time.Second)
	}
}

// assertObserved checks a channel-imc run's resource figures: CPU per
// event and memory per pace step for the dispatcher, the controllers and
// the agents; the dispatcher's CPU over the loads against the kubelet's
// counter over the whole run (counter, the difference, taken before and
// after it); and the profiles of the dispatcher, read by go tool pprof.
func assertObserved(t *testing.T, dir string, sum results.Summary, counter float64) {
	t.Helper()
	if sum.Resources == nil || sum.Resources.Unavailable != "" || !strings.Contains(sum.Resources.Source, "kubelets' resource metrics") {
		t.Fatalf("resources: %+v", sum.Resources)
	}
	var loads float64
	steps := append(append([]results.StepSummary(nil), sum.Warmup.Paces...), sum.Paces...)
	for _, st := range steps {
		if st.Resources.Group(results.GroupAgents) == nil {
			t.Errorf("%s %g/s: no figures of the agents: %+v", st.Phase, st.TargetRPS, st.Resources)
		}
		seen := map[string]bool{}
		for _, c := range st.Resources.Containers {
			for _, name := range []string{"imc-dispatcher-", "imc-controller-", "eventing-controller-"} {
				if c.Namespace == "knative-eventing" && strings.HasPrefix(c.Pod, name) && c.CPUPerEventUS != nil && c.MemoryMiB > 0 {
					seen[name] = true
					if name == "imc-dispatcher-" {
						loads += c.CPUSeconds
						t.Logf("%s %g/s: dispatcher %.3f cores, %.1f µs per event, %.1f MiB (%+.1f)", st.Phase, st.TargetRPS, c.CPUCores, *c.CPUPerEventUS, c.MemoryMiB, c.MemoryGrowthMiB)
					}
				}
			}
		}
		if len(seen) != 3 {
			t.Errorf("%s %g/s: figures of %v only, want the dispatcher and both controllers", st.Phase, st.TargetRPS, seen)
		}
	}
	// The loads are most of what the dispatcher did over the run; outside
	// them it idles. Its CPU over them cannot exceed the counter's growth.
	t.Logf("dispatcher: %.3f CPU seconds over the loads, the kubelet's counter grew %.3f over the run", loads, counter)
	if loads > counter*1.02+0.01 || loads < 0.8*counter {
		t.Errorf("the dispatcher's CPU over the loads is %.3f s, the kubelet's counter grew %.3f s over the run", loads, counter)
	}
	for _, kind := range []string{"cpu", "heap"} {
		files, _ := filepath.Glob(filepath.Join(dir, "profiles", "imc-dispatcher-*.dispatcher.step1-200rps."+kind+".pprof"))
		if len(files) != 1 {
			t.Errorf("%s profiles of the dispatcher: %v", kind, files)
			continue
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", files[0]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "channel_dispatcher") {
			t.Errorf("go tool pprof -top %s: %v\n%s", files[0], err, out)
		}
	}
}

// dispatcherPods returns the in-memory channel dispatcher's ready pods.
func dispatcherPods(t *testing.T) []string {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(restConfig)
	list, err := cs.CoreV1().Pods("knative-eventing").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		if strings.HasPrefix(p.Name, "imc-dispatcher-") && p.DeletionTimestamp == nil && podIsReady(p.Status.Conditions) {
			names = append(names, p.Name)
		}
	}
	return names
}

func podIsReady(conds []corev1.PodCondition) bool {
	for _, c := range conds {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// assertPlatformReady fails the test unless runner platform status says
// the Knative platform provides everything.
func assertPlatformReady(t *testing.T, flags []string) {
	t.Helper()
	code, msg := runner(t, append([]string{"platform", "status", knativePlatform}, flags...)...)
	if code != 0 || strings.Contains(msg, "✗") {
		t.Errorf("platform status: exit %d:\n%s", code, msg)
	}
}

// assertPlatformGone fails the test if anything of the platform is left:
// objects with its label, its namespaces, or what the operator installed
// (Knative's kinds, webhooks, cluster roles).
func assertPlatformGone(t *testing.T) {
	t.Helper()
	left := leftoversOf(t, "knative-eventing", "runner.perf/platform")
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(restConfig)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "knative-operator", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		left = append(left, "namespace knative-operator")
	}
	dyn := dynamic.NewForConfigOrDie(restConfig)
	for _, r := range []schema.GroupVersionResource{
		{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	} {
		list, err := dyn.Resource(r).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list.Items {
			if strings.Contains(it.GetName(), "knative") || strings.Contains(it.GetName(), "eventing") || strings.Contains(it.GetName(), "imc-") {
				left = append(left, r.Resource+" "+it.GetName())
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("the platform left: %s", strings.Join(left, "; "))
	}
}
