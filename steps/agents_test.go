package steps

import (
	"strings"
	"testing"

	"github.com/perfrunner/runner/agent"
	"github.com/perfrunner/runner/target"
)

// TestWhoSendsALoad checks which agents send a load step: none on local;
// on kubernetes all of the run's agent pods by default, the first N with
// agents: N, and this process for a sink it reaches by a port-forward;
// each impossible case is an error that says what to do.
func TestWhoSendsALoad(t *testing.T) {
	pods := []*agent.Client{{}, {}, {}}
	inCluster := "http://perf.ns.svc.cluster.local/"
	for _, c := range []struct {
		name   string
		kind   target.Kind
		pods   []*agent.Client
		load   Load
		url    string
		want   int    // agents that send; -1: this process
		errHas string // the error, when one is wanted
	}{
		{"local", target.Local, pods, Load{Sink: "receiver/perf", Agents: 3}, "http://127.0.0.1:1/", -1, ""},
		{"all pods by default", target.Kubernetes, pods, Load{Sink: "receiver/perf"}, inCluster, 3, ""},
		{"the first two", target.Kubernetes, pods, Load{Sink: "receiver/perf", Agents: 2}, inCluster, 2, ""},
		{"more than there are", target.Kubernetes, pods, Load{Sink: "receiver/perf", Agents: 4}, inCluster, 0, "raise their replicas"},
		{"a port-forwarded sink", target.Kubernetes, pods, Load{Sink: "service/app:8080"}, "http://127.0.0.1:5/", -1, ""},
		{"agents to a port-forwarded sink", target.Kubernetes, pods, Load{Sink: "service/app:8080", Agents: 1}, "http://127.0.0.1:5/", 0, "port-forward from this machine"},
		{"agents but none installed", target.Kubernetes, nil, Load{Sink: "receiver/perf", Agents: 1}, inCluster, 0, "install the perf-agents chart"},
		{"an in-cluster sink and no agents", target.Kubernetes, nil, Load{Sink: "receiver/perf"}, inCluster, 0, "only agents reach"},
		{"a url and no agents", target.Kubernetes, nil, Load{URL: "http://10.0.0.1/"}, "http://10.0.0.1/", -1, ""},
	} {
		sh := NewShared(RunInfo{Target: c.kind})
		if c.pods != nil {
			sh.agents = []*agentsRelease{{release: "perf-agents", namespace: "ns", name: "perf", clients: c.pods}}
		}
		got, err := c.load.agents(&Env{Shared: sh}, c.url)
		switch {
		case c.errHas != "":
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%s: error %v, want one saying %q", c.name, err, c.errHas)
			}
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want < 0 && got != nil, c.want >= 0 && len(got) != c.want:
			t.Errorf("%s: %d agents send, want %d", c.name, len(got), c.want)
		}
	}
}
