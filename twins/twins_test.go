package twins

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
	"github.com/perfrunner/runner/target"
)

// testHost names sinks and runs receivers that record the ids they get.
type testHost struct {
	mu       sync.Mutex
	sinks    map[string]string
	got      map[string][]string // receiver name → ids in arrival order, accepted ones
	requests map[string]int      // receiver name → requests, whatever the answer
}

func newHost() *testHost {
	return &testHost{sinks: map[string]string{}, got: map[string][]string{}, requests: map[string]int{}}
}

func (h *testHost) Sink(name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.sinks[name]; ok {
		return u, nil
	}
	return "", fmt.Errorf("no sink %q", name)
}
func (h *testHost) SetSink(name, url string) { h.mu.Lock(); h.sinks[name] = url; h.mu.Unlock() }

func (h *testHost) ClaimSink(name, url string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, taken := h.sinks[name]; taken {
		return fmt.Errorf("sink %s taken", name)
	}
	h.sinks[name] = url
	return nil
}

func (h *testHost) ReleaseSink(name, url string) {
	h.mu.Lock()
	if h.sinks[name] == url {
		delete(h.sinks, name)
	}
	h.mu.Unlock()
}

// StartReceiver starts a recording receiver; handler, when set for the
// name, answers instead of 202.
func (h *testHost) StartReceiver(name string) (string, func(context.Context) error, error) {
	srv := httptest.NewServer(h.recorder(name, nil))
	h.SetSink("receiver/"+name, srv.URL)
	return srv.URL, func(context.Context) error { srv.Close(); return nil }, nil
}

func (h *testHost) recorder(name string, status func(n int) int) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusAccepted
		if status != nil {
			code = status(int(n.Add(1)))
		}
		h.mu.Lock()
		h.requests[name]++
		if code < 300 {
			h.got[name] = append(h.got[name], r.Header.Get("Ce-Id"))
		}
		h.mu.Unlock()
		w.WriteHeader(code)
	})
}

// receivers starts recording receivers named receiver/<name>, stopped when
// the test ends.
func (h *testHost) receivers(t *testing.T, names ...string) {
	for _, name := range names {
		srv := httptest.NewServer(h.recorder(name, nil))
		t.Cleanup(srv.Close)
		h.SetSink("receiver/"+name, srv.URL)
	}
}

func (h *testHost) ids(name string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got[name]...)
}

func (h *testHost) waitFor(t *testing.T, name string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ids := h.ids(name); len(ids) >= n {
			return ids
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("receiver %s got %d events, want %d", name, len(h.ids(name)), n)
	return nil
}

func install(t *testing.T, l *Local, chart, release string, values map[string]any) {
	t.Helper()
	c, err := helm.LoadFS(charts.FS, chart, "embedded:"+chart)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Install(context.Background(), c, release, "test", values); err != nil {
		t.Fatalf("install %s: %v", chart, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Wait(ctx, release, "test", nil); err != nil {
		t.Fatalf("wait %s: %v", release, err)
	}
}

func post(t *testing.T, url, id, typ string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("data"))
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/test")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func closeLocal(t *testing.T, l *Local) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// The in-memory channel retries a failing subscriber with backoff, and
// gives an event that exhausts its retries to the dead-letter sink.
func TestChannelRetriesAndDeadLetters(t *testing.T) {
	h := newHost()
	flaky := httptest.NewServer(h.recorder("flaky", func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusAccepted
	}))
	defer flaky.Close()
	broken := httptest.NewServer(h.recorder("broken", func(int) int { return http.StatusServiceUnavailable }))
	defer broken.Close()
	dls := httptest.NewServer(h.recorder("dls", nil))
	defer dls.Close()
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "in-memory-channel", "imc", map[string]any{
		"subscribers": []any{map[string]any{"name": "flaky", "subscriber": flaky.URL}, map[string]any{"name": "broken", "subscriber": broken.URL}},
		"delivery":    map[string]any{"retry": 2, "backoffDelay": "PT0.01S", "deadLetterSink": dls.URL},
	})
	url, err := h.Sink("channel/perf")
	if err != nil {
		t.Fatal(err)
	}
	if code := post(t, url, "e1", "t"); code != http.StatusAccepted {
		t.Fatalf("ingress answered %d", code)
	}
	if got := h.waitFor(t, "flaky", 1); got[0] != "e1" {
		t.Errorf("flaky subscriber got %v", got)
	}
	if got := h.waitFor(t, "dls", 1); got[0] != "e1" {
		t.Errorf("dead-letter sink got %v", got)
	}
	h.mu.Lock()
	flakyTries, brokenTries := h.requests["flaky"], h.requests["broken"]
	h.mu.Unlock()
	if flakyTries != 3 || brokenTries != 3 {
		t.Errorf("attempts: flaky %d, broken %d; want 3 each (two failures then a success; one try and two retries)", flakyTries, brokenTries)
	}
	if code := post(t, url+"/", "", "t"); code != http.StatusBadRequest {
		t.Errorf("an event without id was answered %d", code)
	}
}

// The channel-based broker delivers an event only to the triggers whose
// filter it matches.
func TestChannelBrokerFilters(t *testing.T) {
	h := newHost()
	h.receivers(t, "a", "b")
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "channel-broker", "broker", map[string]any{"triggers": []any{
		map[string]any{"name": "a", "subscriber": "receiver/a", "filter": map[string]any{"type": "x"}},
		map[string]any{"name": "b", "subscriber": "receiver/b", "filter": map[string]any{"type": "y", "source": ""}},
	}})
	url, _ := h.Sink("broker/default")
	for i, typ := range []string{"x", "y", "x", "z"} {
		if code := post(t, url, fmt.Sprint(i), typ); code != http.StatusAccepted {
			t.Fatalf("ingress answered %d", code)
		}
	}
	if got := h.waitFor(t, "a", 2); len(got) != 2 || got[0]+got[1] != "02" && got[0]+got[1] != "20" {
		t.Errorf("trigger a got %v, want 0 and 2", got)
	}
	if got := h.waitFor(t, "b", 1); len(got) != 1 || got[0] != "1" {
		t.Errorf("trigger b got %v, want 1", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.ids("a"); len(got) != 2 {
		t.Errorf("trigger a got %v in the end", got)
	}
}

// A Kafka source delivers a partition's records in order when ordered,
// even with a random added latency that would reorder them otherwise.
func TestKafkaSourceOrderedPerPartition(t *testing.T) {
	h := newHost()
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "kafka", "kafka", nil)
	addrs, err := l.Bootstrap("kafka:9092")
	if err != nil {
		t.Fatal(err)
	}
	if err := createTopic(context.Background(), addrs, "one", 1, nil); err != nil {
		t.Fatal(err)
	}
	h.receivers(t, "perf")
	install(t, l, "kafka-source", "source", map[string]any{
		"topics": []any{"one"}, "sink": "receiver/perf", "ordering": "ordered",
		"twin": map[string]any{"latency": "uniform:0ms-3ms"},
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("one"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprintf("partition:0/offset:%d", i))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("plain, not a CloudEvent")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := h.waitFor(t, "perf", 100)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("delivered out of order:\n%v", got)
	}
}

// The embedded Kafka drops records older than its retention, so a long
// run does not keep every record it was sent.
func TestKafkaRetentionIsApplied(t *testing.T) {
	l := NewLocal(newHost(), nil)
	closeLocal(t, l)
	install(t, l, "kafka", "kafka", map[string]any{"retention": "PT1S"})
	addrs, _ := l.Bootstrap("kafka.test.svc.cluster.local:9092")
	if err := createTopic(context.Background(), addrs, "r", 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("r"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 50 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: make([]byte, 8192)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(10 * time.Second)
	for {
		offs, err := adm.ListStartOffsets(context.Background(), "r")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup("r", 0); ok && o.Offset == 50 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("start offsets after 10 s: %v", offs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestLocalErrors(t *testing.T) {
	l := NewLocal(newHost(), nil)
	closeLocal(t, l)
	if _, err := l.Bootstrap("kafka:9092"); err == nil || !strings.Contains(err.Error(), "no Kafka is installed") {
		t.Errorf("bootstrap without Kafka: %v", err)
	}
	if _, err := l.Sink(target.Sink{Kind: target.SinkKafka, Name: "t"}); err == nil {
		t.Errorf("kafka sink without Kafka accepted")
	}
	c, _ := helm.LoadFS(charts.FS, "in-memory-channel", "embedded:in-memory-channel")
	c.Annotations = map[string]string{charts.TwinAnnotation: "carrier-pigeon"}
	if err := l.Install(context.Background(), c, "x", "test", nil); err == nil || !strings.Contains(err.Error(), `"carrier-pigeon", which does not exist`) {
		t.Errorf("unknown twin: %v", err)
	}
	install(t, l, "in-memory-channel", "imc", nil)
	c, _ = helm.LoadFS(charts.FS, "in-memory-channel", "embedded:in-memory-channel")
	if err := l.Install(context.Background(), c, "imc", "test", nil); err == nil || !strings.Contains(err.Error(), "already installed") {
		t.Errorf("second install: %v", err)
	}
	if err := l.Wait(context.Background(), "imc", "test", []string{"Broker/perf"}); err == nil || !strings.Contains(err.Error(), "rendered no Broker/perf (it has inmemorychannel/perf)") {
		t.Errorf("wait for an object the release lacks: %v", err)
	}
	if err := l.Uninstall(context.Background(), "never", "test"); err != nil {
		t.Errorf("uninstalling what is not installed: %v", err)
	}
}

// The backlog bounds the events waiting for capacity: past it, the
// ingress refuses. At 1 event/s, the first goes at once, the second waits
// in the dispatcher for its turn, five wait in the backlog, the rest are
// refused.
func TestChannelBacklogRefuses(t *testing.T) {
	h := newHost()
	sub := httptest.NewServer(h.recorder("sub", nil))
	defer sub.Close()
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "in-memory-channel", "imc", map[string]any{
		"subscribers": []any{map[string]any{"name": "sub", "subscriber": sub.URL}},
		"twin":        map[string]any{"backlog": 5, "capacity": 1},
	})
	url, _ := h.Sink("channel/perf")
	codes := map[int]int{}
	for i := range 10 {
		codes[post(t, url, fmt.Sprint(i), "t")]++
		time.Sleep(10 * time.Millisecond) // the dispatcher takes what it can
	}
	if codes[http.StatusAccepted] != 7 || codes[http.StatusServiceUnavailable] != 3 {
		t.Errorf("answers %v, want 7 accepted and 3 refused", codes)
	}
	h.waitFor(t, "sub", 1)
}

// A Kafka channel applies its knobs per subscription, as Knative runs a
// dispatcher per subscription: each subscriber loses exactly its share.
func TestKafkaChannelKnobsPerSubscription(t *testing.T) {
	h := newHost()
	h.receivers(t, "a", "b")
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "kafka", "kafka", nil)
	install(t, l, "kafka-channel", "kc", map[string]any{
		"partitions":  4,
		"subscribers": []any{map[string]any{"name": "a", "subscriber": "receiver/a"}, map[string]any{"name": "b", "subscriber": "receiver/b"}},
		"twin":        map[string]any{"loss": 0.1},
	})
	url, _ := h.Sink("channel/perf")
	for i := range 100 {
		if code := post(t, url, fmt.Sprint(i), "t"); code != http.StatusAccepted {
			t.Fatalf("ingress answered %d", code)
		}
	}
	h.waitFor(t, "a", 90)
	h.waitFor(t, "b", 90)
	time.Sleep(200 * time.Millisecond)
	if a, b := len(h.ids("a")), len(h.ids("b")); a != 90 || b != 90 {
		t.Errorf("delivered %d and %d, want 90 each", a, b)
	}
}

// A consumer group with no partitions is not ready: a source whose topic
// does not exist fails kube.wait, naming the group and the topic.
func TestKafkaSourceNotReadyWithoutTopic(t *testing.T) {
	h := newHost()
	h.receivers(t, "perf")
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "kafka", "kafka", nil)
	c, _ := helm.LoadFS(charts.FS, "kafka-source", "embedded:kafka-source")
	if err := l.Install(context.Background(), c, "src", "test", map[string]any{"topics": []any{"missing"}, "consumerGroup": "g1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := l.Wait(ctx, "src", "test", nil)
	if err == nil || !strings.Contains(err.Error(), "consumer group g1 has no partitions of missing") {
		t.Fatalf("wait: %v", err)
	}
}

// A subscriber named by its channel's kind, as a cluster needs it, is the
// twin's channel of that name: one channel's subscription feeds another.
func TestChannelNamedByItsKind(t *testing.T) {
	h := newHost()
	h.receivers(t, "r")
	l := NewLocal(h, nil)
	closeLocal(t, l)
	install(t, l, "in-memory-channel", "second", map[string]any{
		"name":        "second",
		"subscribers": []any{map[string]any{"name": "r", "subscriber": "receiver/r"}},
	})
	install(t, l, "in-memory-channel", "first", map[string]any{
		"name":        "first",
		"subscribers": []any{map[string]any{"name": "on", "subscriber": "inmemorychannel/second"}},
	})
	url, err := h.Sink("channel/first")
	if err != nil {
		t.Fatal(err)
	}
	if code := post(t, url, "e1", "t"); code != http.StatusAccepted {
		t.Fatalf("ingress answered %d", code)
	}
	if got := h.waitFor(t, "r", 1); got[0] != "e1" {
		t.Errorf("through both channels: %v", got)
	}
}
