package twins

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/perfrunner/runner/target"
)

func init() {
	register("channel-broker", startChannelBroker)
}

// BrokerValues are the channel-broker and kafka-broker charts' values the
// twins use.
type BrokerValues struct {
	Name     string    `json:"name"`
	Triggers []Trigger `json:"triggers"`
	Delivery Delivery  `json:"delivery"`
	Twin     Knobs     `json:"twin"`
}

// Trigger subscribes a subscriber to the events of a broker whose attributes
// equal its filter's (an empty filter value matches any).
type Trigger struct {
	Name       string            `json:"name"`
	Subscriber string            `json:"subscriber"`
	Filter     map[string]string `json:"filter"`
}

func (t Trigger) matches(ev *event) bool {
	for k, want := range t.Filter {
		if want != "" && ev.attrs[strings.ToLower(k)] != want {
			return false
		}
	}
	return true
}

// channelBroker is Knative's channel-based broker: the broker's ingress
// posts each event to an in-memory channel, whose subscriptions are the
// triggers' filters; a filter passes a matching event on to its trigger's
// subscriber and answers with the subscriber's status, so the channel's
// retries cover the subscriber. Three HTTP hops on loopback, as in a
// cluster. The knobs apply to the channel.
type channelBroker struct {
	sink    string
	url     string // the ingress's, once the sink is claimed
	ingress *server
	ch      *channel
	filter  *server
	fwd     *dispatcher
	host    target.Host
}

func startChannelBroker(_ context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v BrokerValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	sinks := sinkResolver{l.host}
	subscribers := map[string]string{}
	triggers := map[string]Trigger{}
	for _, t := range v.Triggers {
		u, err := sinks.resolve(t.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		subscribers[t.Name] = u
		triggers[t.Name] = t
	}
	b := &channelBroker{sink: target.SinkName(target.SinkBroker, v.Name), host: l.host}
	// Hops between the broker's parts: one attempt each; retries are the
	// channel's.
	b.fwd = newDispatcher(context.Background(), &knobs{}, delivery{timeout: 30e9}, rel.log)
	var err error
	b.filter, err = serve(ingress(func(req *http.Request, ev *event) (int, error) {
		name := strings.TrimPrefix(req.URL.Path, "/triggers/")
		t, ok := triggers[name]
		if !ok {
			return http.StatusNotFound, fmt.Errorf("no trigger %q", name)
		}
		if !t.matches(ev) {
			return http.StatusAccepted, nil
		}
		if err := b.fwd.post(req.Context(), ev, subscribers[name]); err != nil {
			return http.StatusBadGateway, err
		}
		return http.StatusAccepted, nil
	}))
	if err != nil {
		return nil, err
	}
	filterURLs := make([]string, 0, len(v.Triggers))
	for _, t := range v.Triggers {
		filterURLs = append(filterURLs, b.filter.url()+"/triggers/"+t.Name)
	}
	b.ch, err = newChannel(v.Twin, v.Delivery, sinks, rel, func(*event) []string { return filterURLs })
	if err != nil {
		_ = b.filter.close(context.Background())
		return nil, err
	}
	chURL := b.ch.srv.url()
	b.ingress, err = serve(ingress(func(req *http.Request, ev *event) (int, error) {
		if err := b.fwd.post(req.Context(), ev, chURL); err != nil {
			return http.StatusServiceUnavailable, err
		}
		return http.StatusAccepted, nil
	}))
	if err != nil {
		_ = b.Close(context.Background())
		return nil, err
	}
	b.url = b.ingress.url()
	if err := l.host.ClaimSink(b.sink, b.url); err != nil {
		_ = b.Close(context.Background())
		return nil, err
	}
	return b, nil
}

func (b *channelBroker) Ready(context.Context) error { return nil }

// Close stops the parts in the order events flow through them.
func (b *channelBroker) Close(ctx context.Context) error {
	if b.url != "" {
		b.host.ReleaseSink(b.sink, b.url)
	}
	var first error
	if b.ingress != nil {
		first = b.ingress.close(ctx)
	}
	if err := b.ch.Close(ctx); first == nil {
		first = err
	}
	if err := b.filter.close(ctx); first == nil {
		first = err
	}
	b.fwd.close()
	return first
}
