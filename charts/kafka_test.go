package charts_test

import (
	"context"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/perfrunner/runner/charts"
	"github.com/perfrunner/runner/internal/helm"
)

// render renders a shipped chart as release in namespace perf and returns
// its objects by kind/name.
func render(t *testing.T, chart, release string, values map[string]any) map[string]map[string]any {
	t.Helper()
	c, err := helm.LoadFS(charts.FS, chart, "embedded:"+chart)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Render(context.Background(), release, "perf", values)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(r.Manifest))
	for {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			break
		}
		if o == nil {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		objs[o["kind"].(string)+"/"+md["name"].(string)] = o
	}
	return objs
}

// properties parses a server.properties.
func properties(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

func serverProperties(t *testing.T, values map[string]any) map[string]string {
	t.Helper()
	objs := render(t, "kafka", "kafka", values)
	cm, ok := objs["ConfigMap/kafka-config"]
	if !ok {
		t.Fatalf("no ConfigMap kafka-config among %v", objs)
	}
	return properties(cm["data"].(map[string]any)["server.properties"].(string))
}

// The brokers' configuration, for one broker and for three: replication
// of the internal topics as the brokers allow (at most 3), each broker
// advertised by its own name in the namespace, ZooKeeper in the
// release's namespace, retention from the ISO 8601 value, and no topic
// made by a client's mistake.
func TestKafkaBrokerConfig(t *testing.T) {
	for _, tt := range []struct {
		brokers                int
		replication, minISR    string
		retention, retentionMS string
	}{
		{1, "1", "1", "PT20S", "20000"},
		{3, "3", "2", "PT10M", "600000"},
		{5, "3", "2", "P1DT0.5S", "86400500"},
	} {
		p := serverProperties(t, map[string]any{"brokers": tt.brokers, "retention": tt.retention})
		want := map[string]string{
			"broker.id":                                "__ID__",
			"listeners":                                "PLAINTEXT://:9092",
			"advertised.listeners":                     "PLAINTEXT://kafka-__ID__.kafka.perf.svc.cluster.local:9092",
			"zookeeper.connect":                        "zookeeper.perf.svc.cluster.local:2181",
			"default.replication.factor":               tt.replication,
			"offsets.topic.replication.factor":         tt.replication,
			"transaction.state.log.replication.factor": tt.replication,
			"transaction.state.log.min.isr":            tt.minISR,
			"log.retention.ms":                         tt.retentionMS,
			"auto.create.topics.enable":                "false",
			"group.initial.rebalance.delay.ms":         "0",
			"num.partitions":                           "100",
		}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%d brokers: %s = %q, want %q", tt.brokers, k, p[k], v)
			}
		}
		if _, ok := p["process.roles"]; ok {
			t.Errorf("%d brokers in ZooKeeper mode: process.roles is set", tt.brokers)
		}
	}
}

// In KRaft mode the brokers are their own controllers: every one is a
// voter, by its name, and no ZooKeeper is named.
func TestKafkaKRaftConfig(t *testing.T) {
	p := serverProperties(t, map[string]any{"brokers": 3, "mode": "kraft"})
	want := map[string]string{
		"process.roles":             "broker,controller",
		"node.id":                   "__ID__",
		"controller.quorum.voters":  "0@kafka-0.kafka.perf.svc.cluster.local:9093,1@kafka-1.kafka.perf.svc.cluster.local:9093,2@kafka-2.kafka.perf.svc.cluster.local:9093",
		"listeners":                 "PLAINTEXT://:9092,CONTROLLER://:9093",
		"controller.listener.names": "CONTROLLER",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	if _, ok := p["zookeeper.connect"]; ok {
		t.Error("KRaft mode names ZooKeeper")
	}
}

// The headless Services publish addresses before their pods are ready, so
// that a cluster's members find each other while they start; a ZooKeeper
// ensemble names every server; an even ensemble and a bad retention are
// refused.
func TestKafkaAndZooKeeperServices(t *testing.T) {
	for _, chart := range []string{"kafka", "zookeeper"} {
		svc := render(t, chart, chart, nil)["Service/"+chart]
		if svc["spec"].(map[string]any)["publishNotReadyAddresses"] != true {
			t.Errorf("%s: the Service does not publish addresses before ready: %v", chart, svc["spec"])
		}
	}
	sts := render(t, "zookeeper", "zk", map[string]any{"replicas": 3})["StatefulSet/zk"]
	env := sts["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["env"].([]any)
	servers := ""
	for _, e := range env {
		if e.(map[string]any)["name"] == "ZOO_SERVERS" {
			servers = e.(map[string]any)["value"].(string)
		}
	}
	if want := "server.1=zk-0.zk.perf.svc.cluster.local:2888:3888;2181 server.2=zk-1.zk.perf.svc.cluster.local:2888:3888;2181 server.3=zk-2.zk.perf.svc.cluster.local:2888:3888;2181"; servers != want {
		t.Errorf("ZOO_SERVERS = %q, want %q", servers, want)
	}
	for _, tt := range []struct {
		chart  string
		values map[string]any
		want   string
	}{
		{"zookeeper", map[string]any{"replicas": 2}, "give an odd number"},
		{"kafka", map[string]any{"retention": "PT20X"}, "retention"},
	} {
		c, _ := helm.LoadFS(charts.FS, tt.chart, "embedded:"+tt.chart)
		if _, err := c.Render(context.Background(), "r", "perf", tt.values); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s with %v: %v, want an error with %q", tt.chart, tt.values, err, tt.want)
		}
	}
}

// The Knative Kafka charts name brokers as the data planes in
// knative-eventing resolve them: in the release's namespace.
func TestKafkaBootstrapIsQualified(t *testing.T) {
	src := render(t, "kafka-source", "src", map[string]any{"bootstrapServers": "kafka:9092,other.example:9092"})["KafkaSource/perf"]
	got := src["spec"].(map[string]any)["bootstrapServers"].([]any)
	if len(got) != 2 || got[0] != "kafka.perf.svc.cluster.local:9092" || got[1] != "other.example:9092" {
		t.Errorf("KafkaSource bootstrapServers = %v", got)
	}
	if spec := src["spec"].(map[string]any); spec["ordering"] != "ordered" || spec["consumers"] != 1 {
		t.Errorf("KafkaSource ordering %v, consumers %v", spec["ordering"], spec["consumers"])
	}
}

// A destination names a channel by its kind, so that a subscription
// refers to the object a channel chart renders.
func TestDestinationKinds(t *testing.T) {
	for sink, want := range map[string][2]string{
		"inmemorychannel/x": {"messaging.knative.dev/v1", "InMemoryChannel"},
		"kafkachannel/x":    {"messaging.knative.dev/v1beta1", "KafkaChannel"},
		"channel/x":         {"messaging.knative.dev/v1", "Channel"},
		"broker/x":          {"eventing.knative.dev/v1", "Broker"},
		"receiver/x":        {"v1", "Service"},
	} {
		objs := render(t, "in-memory-channel", "imc", map[string]any{"subscribers": []any{map[string]any{"name": "s", "subscriber": sink}}})
		ref := objs["Subscription/s"]["spec"].(map[string]any)["subscriber"].(map[string]any)["ref"].(map[string]any)
		if ref["apiVersion"] != want[0] || ref["kind"] != want[1] || ref["name"] != "x" {
			t.Errorf("%s: ref %v, want %v", sink, ref, want)
		}
	}
}
