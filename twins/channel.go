package twins

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perfrunner/runner/target"
)

func init() {
	register("in-memory-channel", startChannel)
}

// ChannelValues are the in-memory-channel chart's values the twin uses.
type ChannelValues struct {
	Name        string       `json:"name"`
	Subscribers []Subscriber `json:"subscribers"`
	Delivery    Delivery     `json:"delivery"`
	Twin        Knobs        `json:"twin"`
}

// Subscriber is one subscription of a channel.
type Subscriber struct {
	Name       string `json:"name"`
	Subscriber string `json:"subscriber"`
}

// maxInFlight bounds a channel's deliveries in flight.
const maxInFlight = 10000

// channel is an in-memory channel, as Knative's: an HTTP ingress that
// accepts an event into a bounded backlog of events waiting for capacity
// (503 when it is full), and a
// dispatcher that fans each event out to every subscriber, with retries,
// backoff and a dead-letter sink. Events are dispatched at most at the
// twin's capacity; each waits its added latency on its own.
type channel struct {
	srv      *server
	queue    chan *event
	disp     *dispatcher
	targets  func(*event) []string
	cancel   context.CancelFunc
	pumpDone chan struct{}
	inflight sync.WaitGroup
	pending  atomic.Int64  // accepted and not yet delivered (or given up)
	slots    chan struct{} // deliveries in flight
	onClose  func()
}

func startChannel(ctx context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v ChannelValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	sinks := sinkResolver{l.host}
	urls := make([]string, len(v.Subscribers))
	for i, s := range v.Subscribers {
		u, err := sinks.resolve(s.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("subscriber %s: %w", s.Name, err)
		}
		urls[i] = u
	}
	c, err := newChannel(v.Twin, v.Delivery, sinks, rel, func(*event) []string { return urls })
	if err != nil {
		return nil, err
	}
	name, url := target.SinkName(target.SinkChannel, v.Name), c.srv.url()
	if err := l.host.ClaimSink(name, url); err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	c.onClose = func() { l.host.ReleaseSink(name, url) }
	return c, nil
}

// newChannel starts a channel whose events go to targets(event).
func newChannel(k Knobs, d Delivery, sinks sinkResolver, rel release, targets func(*event) []string) (*channel, error) {
	kn, err := k.build()
	if err != nil {
		return nil, err
	}
	del, err := d.resolve(sinks)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &channel{queue: make(chan *event, kn.backlog), slots: make(chan struct{}, maxInFlight), disp: newDispatcher(ctx, kn, del, rel.log), targets: targets, cancel: cancel, pumpDone: make(chan struct{})}
	c.srv, err = serve(ingress(func(_ *http.Request, ev *event) (int, error) {
		c.pending.Add(1)
		select {
		case c.queue <- ev:
		default:
			c.pending.Add(-1)
			return http.StatusServiceUnavailable, errFull
		}
		return http.StatusAccepted, nil
	}))
	if err != nil {
		cancel()
		return nil, err
	}
	go c.pump(ctx)
	return c, nil
}

// pump admits events from the backlog at the twin's capacity and dispatches
// each on its own goroutine.
func (c *channel) pump(ctx context.Context) {
	defer close(c.pumpDone)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.queue:
			copies, err := c.disp.admit(ctx)
			if err != nil {
				return
			}
			// At most maxInFlight deliveries at once: past them, events
			// wait in the backlog, and past it the ingress refuses.
			select {
			case c.slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			c.inflight.Add(1)
			go func() {
				defer c.inflight.Done()
				defer func() { <-c.slots; c.pending.Add(-1) }()
				c.disp.fanout(ctx, ev, c.targets(ev), copies)
			}()
		}
	}
}

func (c *channel) Ready(context.Context) error { return nil }

// Close stops the ingress, then lets the backlog and deliveries in flight
// finish until ctx ends, when whatever is left is abandoned.
func (c *channel) Close(ctx context.Context) error {
	if c.onClose != nil {
		c.onClose()
	}
	err := c.srv.close(ctx)
	waitIdle(ctx, func() bool { return c.pending.Load() == 0 })
	c.cancel()
	<-c.pumpDone
	c.inflight.Wait()
	c.disp.close()
	return err
}

// waitIdle polls idle until it holds or ctx ends.
func waitIdle(ctx context.Context, idle func() bool) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !idle() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
