package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/results"
	"github.com/perfrunner/runner/scenario"
	"github.com/perfrunner/runner/twins"
)

// shipped returns the scenario files in scenarios/, aliases (symlinks)
// apart.
func shipped(t *testing.T) (files, aliases []string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "scenarios", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), "matrix-") {
			continue // a matrix of scenarios, not one
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			aliases = append(aliases, p)
		} else {
			files = append(files, p)
		}
	}
	return files, aliases
}

// listening returns the TCP sockets this process listens on, from /proc.
func listening(t *testing.T) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" && inodes[f[9]] { // 0A: LISTEN
				out = append(out, f[1])
			}
		}
	}
	return out
}

// settled waits for the goroutine count to come back to at most base and
// returns the last count.
func settled(base int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// held reports whether a step held, or broke only because the generator
// was late: the machine's fault, not the system's, and what a loaded
// machine or the race detector brings about.
func held(p results.StepSummary) bool {
	if p.Verdict == "held" {
		return true
	}
	return p.Verdict == "broken" && p.SendFailures == 0 && p.Lost == 0 && p.Dropped == 0 && (p.SendOnly || p.Delivered == p.Intended) && p.GeneratorSaturated
}

// runFile runs a scenario file on the local target and returns its run
// directory and Run's error.
func runFile(t *testing.T, file string, opts scenario.Options) (string, error) {
	t.Helper()
	sc, err := scenario.Load(file, opts)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	r := &Runner{Scenario: sc, OutDir: t.TempDir(), Version: "test", Open: twins.Open}
	err = r.Run(context.Background())
	return r.dir, err
}

// Every shipped scenario runs end to end with its smoke pace on the local
// target; every measured step holds; afterwards nothing listens and no
// goroutine is left behind.
func TestShippedScenariosRunOnLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every shipped scenario")
	}
	files, _ := shipped(t)
	if len(files) < 7 {
		t.Fatalf("only %d scenarios shipped: %v", len(files), files)
	}
	// The race detector slows the load path and the twins several times
	// over: a channel or broker is three HTTP hops of 8 KiB events in this
	// one process, which two cores under it cannot carry at the smoke
	// pace's 1000/s. Under it the smoke pace's shape runs at a fifth.
	paceSpec, warmup := "smoke", "warmupPace=500:1"
	if raceEnabled {
		paceSpec, warmup = "100:2,200:2", "warmupPace=100:1"
	}
	// The HTTP server's date updater is one goroutine for the life of the
	// process, started by its first server: start it before counting.
	recv, err := loadgen.Listen("127.0.0.1:0", func(loadgen.Receipt) {})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(recv.URL()); err == nil { // served: 405
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	_ = recv.Close(context.Background())
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			before := listening(t)
			base := runtime.NumGoroutine()
			opts := scenario.Options{Pace: "smoke"}
			if name != "lifecycle" {
				opts = scenario.Options{Pace: paceSpec, Set: []string{warmup}}
			}
			stopSink := func() {}
			if name == "url" {
				// A plain HTTP service, which delivers nothing anywhere.
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusOK)
				}))
				stopSink = srv.Close
				opts.Set = append(opts.Set, "sinkURL="+srv.URL+"/events")
			}
			dir, err := runFile(t, file, opts)
			stopSink()
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if name != "lifecycle" {
				sum, err := results.ReadSummary(dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(sum.Paces) != 2 {
					t.Fatalf("%d measured steps, want the smoke pace's 2", len(sum.Paces))
				}
				for _, p := range sum.Paces {
					switch {
					case name == "url":
						// Send-only: publish figures, and nothing said of deliveries.
						if !held(p) || !p.SendOnly || p.E2EMS.Count != 0 || p.Delivered != 0 || p.Accepted != p.Intended || p.PublishMS.Count != p.Intended {
							t.Errorf("step at %g/s: %s (%s), send-only %v, e2e %v, %d delivered, %d of %d accepted, %d publish latencies",
								p.TargetRPS, p.Verdict, p.Reason, p.SendOnly, p.E2EMS, p.Delivered, p.Accepted, p.Intended, p.PublishMS.Count)
						}
					case !held(p) || p.Delivered != p.Intended || p.Lost != 0:
						t.Errorf("step at %g/s: %s (%s), %d of %d delivered, %d lost", p.TargetRPS, p.Verdict, p.Reason, p.Delivered, p.Intended, p.Lost)
					}
				}
				switch {
				case sum.Warmup == nil || sum.Warmup.Sent == 0:
					t.Errorf("no warmup was recorded")
				case name != "url" && sum.Warmup.Delivered == 0:
					t.Errorf("the warmup delivered nothing")
				}
				if name == "url" {
					if sum.Totals.E2EMS.Count != 0 {
						t.Errorf("a send-only run reports end-to-end latency: %+v", sum.Totals.E2EMS)
					}
					report, err := os.ReadFile(filepath.Join(dir, "report.md"))
					if err != nil || !strings.Contains(string(report), "deliveries not measured (send-only)") || strings.Contains(string(report), "NaN") {
						t.Errorf("report.md does not say the run is send-only (%v):\n%s", err, report)
					}
				}
			}
			if after := listening(t); len(after) > len(before) {
				t.Errorf("still listening after the run: %v (before: %v)", after, before)
			}
			if n := settled(base); n > base {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after the run, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

// scenarios/kafka-channel.yaml, the name users know, is the channel-kafka
// scenario itself: one file, not a copy.
func TestKafkaChannelAlias(t *testing.T) {
	_, aliases := shipped(t)
	if !slices.Contains(aliases, filepath.Join("..", "scenarios", "kafka-channel.yaml")) {
		t.Fatalf("scenarios/kafka-channel.yaml is not an alias: %v", aliases)
	}
	target, err := os.Readlink(filepath.Join("..", "scenarios", "kafka-channel.yaml"))
	if err != nil || target != "channel-kafka.yaml" {
		t.Fatalf("kafka-channel.yaml points at %q (%v), want channel-kafka.yaml", target, err)
	}
	sc, err := scenario.Load(filepath.Join("..", "scenarios", "kafka-channel.yaml"), scenario.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "channel-kafka" {
		t.Errorf("name %q", sc.Name)
	}
}

// A twin with a capacity of 1500 events/s holds every step below it and
// breaks at the first step above it. The race detector slows the whole
// load path several times over, so under it the same shape runs at a fifth
// of the rates.
func TestTwinCapacityBreaksAboveIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 15 s pace")
	}
	scale := 1.0
	if raceEnabled {
		scale = 0.2
	}
	var steps []string
	for _, rps := range []float64{1000, 1200, 1400, 1600, 1800} {
		steps = append(steps, fmt.Sprintf("%g:3", rps*scale))
	}
	dir, err := runFile(t, filepath.Join("..", "scenarios", "channel-imc.yaml"), scenario.Options{
		Pace: strings.Join(steps, ","),
		Set:  []string{"warmupPace=200:1", fmt.Sprintf("capacity=%g", 1500*scale)},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sum, err := results.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range sum.Paces {
		v := p.Verdict
		if held(p) {
			v = "held"
		}
		got = append(got, v)
	}
	if want := []string{"held", "held", "held", "broken", "broken"}; !slices.Equal(got, want) {
		for _, p := range sum.Paces {
			t.Logf("%g/s: %s %s", p.TargetRPS, p.Verdict, p.Reason)
		}
		t.Fatalf("verdicts %v, want %v", got, want)
	}
	if sum.Paces[3].SendFailures == 0 {
		t.Errorf("the 1600/s step broke without refusals: %s", sum.Paces[3].Reason)
	}
}

// The loss and duplicate knobs are ground truth: the runner counts exactly
// the events the twin dropped and duplicated. Through the twin go the probe
// (event 1), then the 2000 measured events (2 to 2001). Loss 0.01 picks
// events 100, 200, … 2000: 20 lost. Duplicate 0.004 picks among the 1981
// others: ⌊1981 × 0.004⌋ = 7 duplicates.
func TestTwinLossAndDuplicatesAreCountedExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 2 s pace")
	}
	_, r, err := runScenario(t, context.Background(), `name: truth
paces:
  p: "1000:2"
defaults: {pace: p}
setup:
  - name: receiver
    helm.install: {release: perf-agents, chart: perf-agents, values: {name: perf}}
  - name: channel
    helm.install:
      release: imc
      chart: in-memory-channel
      values:
        subscribers: [{name: perf, subscriber: receiver/perf}]
        twin: {loss: 0.01, duplicate: 0.004}
measure:
  - name: load
    load: {sink: channel/perf, payloadBytes: 512, drainTimeout: 2s}
`)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sum, err := results.ReadSummary(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Totals.Intended != 2000 || sum.Totals.Lost != 20 || sum.Totals.Duplicates != 7 {
		t.Errorf("intended %d, lost %d, duplicates %d; want 2000, 20, 7", sum.Totals.Intended, sum.Totals.Lost, sum.Totals.Duplicates)
	}
}

// A value the chart refuses is refused before the run, with Helm's
// message at the values' position: nothing is installed.
func TestHelmInstallBadValue(t *testing.T) {
	_, err := scenario.Decode("s.yaml", []byte(`name: bad
setup:
  - name: channel
    helm.install:
      release: imc
      chart: in-memory-channel
      values:
        twin: {loss: 2}
measure:
  - name: wait
    sleep: {duration: 1ms}
`), scenario.Options{})
	want := `s.yaml:7:7: step "channel" (helm.install): values: chart in-memory-channel does not render with these values: twin.loss: maximum: got 2, want 1`
	if err == nil || err.Error() != want {
		t.Errorf("decode error = %v\nwant %s", err, want)
	}
}

// A chart that declares no twin cannot be installed on local, and says why.
func TestChartWithoutTwin(t *testing.T) {
	chart := t.TempDir()
	if err := os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: plain\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runScenario(t, context.Background(), `name: plain
setup:
  - name: plain
    helm.install: {release: plain, chart: `+chart+`}
measure:
  - name: wait
    sleep: {duration: 1ms}
`)
	if err == nil || !strings.Contains(err.Error(), "declares no embedded twin") || !strings.Contains(err.Error(), "runner.perf/twin") {
		t.Fatalf("Run error = %v, want the missing twin named", err)
	}
}

// A kafka.topic step that finds its topic there already fails at once,
// without retries, and teardown leaves that topic alone: the run did not
// make it.
func TestKafkaTopicThatExistsIsNotTheRuns(t *testing.T) {
	_, r, err := runScenario(t, context.Background(), `name: topic
setup:
  - name: kafka
    helm.install: {release: kafka, chart: kafka}
  - name: channel
    helm.install: {release: kc, chart: kafka-channel, values: {partitions: 3}}
  - name: topic
    retries: 2
    kafka.topic: {name: knative-messaging-kafka.default.perf}
measure:
  - name: wait
    sleep: {duration: 1ms}
`)
	if err == nil || !strings.Contains(err.Error(), "topic knative-messaging-kafka.default.perf exists already") {
		t.Fatalf("Run error = %v, want the topic found there", err)
	}
	for _, s := range r.record.Steps {
		if s.Name == "topic" && s.Attempts != 1 {
			t.Errorf("the step ran %d times", s.Attempts)
		}
	}
	for _, u := range r.record.Undone {
		if strings.HasPrefix(u.Resource, "kafka.topic/") {
			t.Errorf("teardown undid %s (%s): a topic the run did not make", u.Resource, u.Status)
		}
	}
	pending, err := Pending(r.dir)
	if err != nil || len(pending) != 0 {
		t.Errorf("journal still holds %v (%v)", pending, err)
	}
}

// Two kafka.topic steps on one topic: the second fails, and teardown still
// deletes the topic the first made.
func TestKafkaTopicTwiceStillDeletesTheFirst(t *testing.T) {
	_, r, err := runScenario(t, context.Background(), `name: topic
setup:
  - name: kafka
    helm.install: {release: kafka, chart: kafka}
  - name: first
    kafka.topic: {name: t, partitions: 2}
  - name: second
    kafka.topic: {name: t, partitions: 2}
measure:
  - name: wait
    sleep: {duration: 1ms}
`)
	if err == nil || !strings.Contains(err.Error(), "topic t exists already") {
		t.Fatalf("Run error = %v", err)
	}
	var undone []string
	for _, u := range r.record.Undone {
		if strings.HasPrefix(u.Resource, "kafka.topic/") {
			undone = append(undone, u.Resource+" "+u.Status)
		}
	}
	if len(undone) != 1 || !strings.HasPrefix(undone[0], "kafka.topic/t@setup-") || !strings.HasSuffix(undone[0], " undone") {
		t.Errorf("undone topics %v, want the first step's", undone)
	}
	// The sweep undoes newest first: the topic while its Kafka still runs.
	log, _ := os.ReadFile(filepath.Join(r.dir, LogFile))
	if strings.Contains(string(log), "its Kafka is gone") {
		t.Error("the topic was not deleted: its Kafka was gone first")
	}
}
