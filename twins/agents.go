package twins

import (
	"context"

	"github.com/perfrunner/runner/target"
)

func init() {
	register("receiver", startReceiver)
	register("sender", startSender)
}

// ReceiverValues are the perf-receiver chart's values the twin uses.
type ReceiverValues struct {
	Name string `json:"name"`
}

// receiverTwin is the run's own measuring receiver, named receiver/<name>.
type receiverTwin struct {
	stop func(context.Context) error
}

func startReceiver(_ context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v ReceiverValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	url, stop, err := l.host.StartReceiver(v.Name)
	if err != nil {
		return nil, err
	}
	rel.log.Info("receiver listening", "sink", target.SinkName(target.SinkReceiver, v.Name), "url", url)
	return &receiverTwin{stop: stop}, nil
}

func (r *receiverTwin) Ready(context.Context) error     { return nil }
func (r *receiverTwin) Close(ctx context.Context) error { return r.stop(ctx) }

// sender stands for the perf sender: on the local target, load steps send
// from the runner's own process, so nothing runs.
type sender struct{}

func startSender(_ context.Context, _ *Local, rel release, _ map[string]any) (Twin, error) {
	rel.log.Info("sender: load steps send from the runner itself")
	return sender{}, nil
}

func (sender) Ready(context.Context) error { return nil }
func (sender) Close(context.Context) error { return nil }
