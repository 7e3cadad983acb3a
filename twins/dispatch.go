package twins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Delivery is Knative's spec.delivery: retries with backoff, a per-attempt
// timeout, and a dead-letter sink for events that exhaust them.
type Delivery struct {
	Retry          int    `json:"retry" schema:"minimum=0,maximum=100"`
	BackoffPolicy  string `json:"backoffPolicy" schema:"enum=linear|exponential"`
	BackoffDelay   string `json:"backoffDelay" schema:"isoDuration"`
	Timeout        string `json:"timeout" schema:"isoDuration"`
	DeadLetterSink string `json:"deadLetterSink" schema:"sinkOrEmpty"`
}

// delivery is Delivery resolved: durations read, the dead-letter sink a URL.
type delivery struct {
	retry       int
	exponential bool
	delay       time.Duration
	timeout     time.Duration
	deadLetter  string
}

func (d Delivery) resolve(sinks sinkResolver) (delivery, error) {
	out := delivery{retry: d.Retry, exponential: d.BackoffPolicy != "linear", delay: 100 * time.Millisecond, timeout: 5 * time.Second}
	var err error
	if d.BackoffDelay != "" {
		if out.delay, err = isoDuration(d.BackoffDelay); err != nil {
			return out, fmt.Errorf("delivery.backoffDelay: %w", err)
		}
	}
	if d.Timeout != "" {
		if out.timeout, err = isoDuration(d.Timeout); err != nil {
			return out, fmt.Errorf("delivery.timeout: %w", err)
		}
	}
	if d.DeadLetterSink != "" {
		if out.deadLetter, err = sinks.resolve(d.DeadLetterSink); err != nil {
			return out, fmt.Errorf("delivery.deadLetterSink: %w", err)
		}
	}
	return out, nil
}

// backoff is the wait before retry n (from 1): delay·n when linear,
// delay·2ⁿ⁻¹ when exponential, as Knative computes it.
func (d delivery) backoff(n int) time.Duration {
	if d.exponential {
		return d.delay << (n - 1)
	}
	return d.delay * time.Duration(n)
}

// dispatcher delivers events to subscribers over HTTP, with the twin's knobs
// applied: capacity, added latency, loss and duplication.
type dispatcher struct {
	knobs    *knobs
	delivery delivery
	client   *http.Client
	tr       *http.Transport
	log      *slog.Logger
	ctx      context.Context // ends when the twin stops
}

func newDispatcher(ctx context.Context, k *knobs, d delivery, log *slog.Logger) *dispatcher {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     16 << 10,
	}
	return &dispatcher{knobs: k, delivery: d, client: &http.Client{Transport: tr}, tr: tr, log: log, ctx: ctx}
}

func (d *dispatcher) close() { d.tr.CloseIdleConnections() }

// admit waits for the twin's capacity and decides the event's fate by the
// loss and duplicate knobs: how many times it is to be delivered (0, 1 or 2).
func (d *dispatcher) admit(ctx context.Context) (copies int, err error) {
	if d.knobs.limiter != nil {
		if err := d.knobs.limiter.wait(ctx); err != nil {
			return 0, err
		}
	}
	// Duplication picks among the events not lost, so each knob gives
	// its exact share: ⌊n·loss⌋ lost of n, ⌊m·duplicate⌋ duplicated of
	// the m = n − lost others.
	if d.knobs.loss.next() {
		return 0, nil
	}
	if d.knobs.dup.next() {
		return 2, nil
	}
	return 1, nil
}

// delay spends the CPU an event costs, then sleeps the added latency, if
// any.
func (d *dispatcher) delay(ctx context.Context) error {
	burn(d.knobs.cpu)
	if d.knobs.latency == nil {
		return nil
	}
	t := time.NewTimer(d.knobs.latency())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliver sends ev to url with the delivery's retries; an event that
// exhausts them goes to the dead-letter sink, when there is one.
func (d *dispatcher) deliver(ctx context.Context, ev *event, url string) error {
	var err error
	for attempt := 0; attempt <= d.delivery.retry; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(d.delivery.backoff(attempt))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		if err = d.post(ctx, ev, url); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if d.delivery.deadLetter != "" {
		if dlErr := d.post(ctx, ev, d.delivery.deadLetter); dlErr != nil {
			return fmt.Errorf("%w; dead-letter sink: %v", err, dlErr)
		}
		d.log.Debug("dead-lettered", "id", ev.id(), "subscriber", url, "err", err)
		return nil
	}
	return err
}

var errStatus = errors.New("subscriber refused the event")

func (d *dispatcher) post(ctx context.Context, ev *event, url string) error {
	ctx, cancel := context.WithTimeout(ctx, d.delivery.timeout)
	defer cancel()
	req, err := ev.request(ctx, url)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: %s answered %d", errStatus, url, resp.StatusCode)
	}
	return nil
}

// handle applies the knobs to one event and delivers its copies to every
// target, each target on its own, and logs what failed.
func (d *dispatcher) handle(ctx context.Context, ev *event, targets []string) {
	copies, err := d.admit(ctx)
	if err != nil {
		return
	}
	d.fanout(ctx, ev, targets, copies)
}

// fanout delivers copies of ev to every target after the added latency.
func (d *dispatcher) fanout(ctx context.Context, ev *event, targets []string, copies int) {
	if copies == 0 {
		return
	}
	if err := d.delay(ctx); err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, url := range targets {
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.deliver(ctx, ev, url); err != nil && ctx.Err() == nil {
					d.log.Warn("delivery failed", "id", ev.id(), "subscriber", url, "err", err)
				}
			}()
		}
	}
	wg.Wait()
}
