package twins

import (
	"context"

	"github.com/perfrunner/runner/target"
)

func init() {
	register("agents", startAgents)
}

// AgentsValues are the perf-agents chart's values the twin uses.
type AgentsValues struct {
	Name string `json:"name"`
}

// agentsTwin stands for the agents' pods: on the local target the run's
// measuring receiver runs in the runner's own process as receiver/<name>,
// and a load step's agents are processes the step starts itself.
type agentsTwin struct {
	stop func(context.Context) error
}

func startAgents(_ context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v AgentsValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	url, stop, err := l.host.StartReceiver(v.Name)
	if err != nil {
		return nil, err
	}
	rel.log.Info("receiver listening", "sink", target.SinkName(target.SinkReceiver, v.Name), "url", url)
	return &agentsTwin{stop: stop}, nil
}

func (r *agentsTwin) Ready(context.Context) error     { return nil }
func (r *agentsTwin) Close(ctx context.Context) error { return r.stop(ctx) }
