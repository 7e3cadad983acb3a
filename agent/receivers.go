package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/results"
)

// clockEvery is how often a receiving agent's clock is read again while
// its receipts are pulled.
const clockEvery = 10 * time.Second

// ReceiptPull is one answer to a pull of receipts.
type ReceiptPull struct {
	Next     int64 // the cursor to pull from next
	End      int64 // receipts the agent had taken when the answer was cut
	Overflow int64 // receipts it could not keep, since it started
}

// Receipts pulls the agent's receipts from cursor from, calling fn for
// each, and acknowledges those before from. A pull cut short calls fn for
// none, so pulling again from the same cursor counts nothing twice.
func (c *Client) Receipts(ctx context.Context, from int64, fn func(loadgen.Receipt)) (ReceiptPull, error) {
	body, h, err := c.pull(ctx, "/v1/receipts", from)
	if err != nil {
		return ReceiptPull{}, err
	}
	var p ReceiptPull
	if p.Next, p.End, err = c.cursors(h); err != nil {
		return ReceiptPull{}, err
	}
	if p.Overflow, err = strconv.ParseInt(h.Get(headerOverflow), 10, 64); err != nil {
		return ReceiptPull{}, fmt.Errorf("agent %s: receipts: no %s", c.base, headerOverflow)
	}
	recs := make([]loadgen.Receipt, 0, p.Next-from)
	if err := decodeReceipts(body, func(r loadgen.Receipt) { recs = append(recs, r) }); err != nil {
		return ReceiptPull{}, fmt.Errorf("agent %s: %w", c.base, err)
	}
	if int64(len(recs)) != p.Next-from {
		return ReceiptPull{}, fmt.Errorf("agent %s: receipts: %d in a body that should hold %d", c.base, len(recs), p.Next-from)
	}
	for _, r := range recs {
		fn(r)
	}
	return p, nil
}

// Receivers pulls the receipts of agents' receivers into the run's
// measurement: the sink receiver/<name> that a Service spreads over the
// agent pods behind it. Each agent's arrival times are moved to the
// runner's clock by its offset, read again every clockEvery.
type Receivers struct {
	name   string
	route  func(loadgen.Receipt)
	parts  []*receiving
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

// receiving is one agent's receiver as its pulls saw it.
type receiving struct {
	agent *Client

	mu          sync.Mutex
	clock       Clock // the first reading
	latest      Clock // the one arrivals are corrected by
	uncertainty time.Duration
	caughtUp    time.Time // the start of the newest pull that left nothing behind
	overflow    int64
	err         error // lost
	changed     chan struct{}
}

// AttachReceivers reads each agent's clock and starts pulling its
// receipts, handing each to route. Every agent must receive.
func AttachReceivers(ctx context.Context, name string, agents []*Client, route func(loadgen.Receipt)) (*Receivers, error) {
	pctx, cancel := context.WithCancel(context.Background())
	rs := &Receivers{name: name, route: route, cancel: cancel}
	for _, a := range agents {
		if a.Info.Receiver == "" {
			cancel()
			return nil, fmt.Errorf("agent %s runs no receiver (it was started without --receive)", a)
		}
		c, err := a.MeasureClock(ctx, clockSamples)
		if err != nil {
			cancel()
			return nil, err
		}
		rs.parts = append(rs.parts, &receiving{agent: a, clock: c, latest: c, uncertainty: c.Uncertainty, changed: make(chan struct{})})
	}
	for _, p := range rs.parts {
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			rs.pull(pctx, p)
		}()
	}
	return rs, nil
}

// pull hands p's receipts to the route until ctx ends or the agent is lost.
func (rs *Receivers) pull(ctx context.Context, p *receiving) {
	var from int64
	var failing time.Time
	lastClock := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastClock) > clockEvery {
			if c, err := p.agent.MeasureClock(ctx, clockSamples); err == nil {
				p.mu.Lock()
				p.latest, p.uncertainty = c, max(p.uncertainty, c.Uncertainty)
				p.mu.Unlock()
			}
			lastClock = time.Now()
		}
		p.mu.Lock()
		offset := int64(p.latest.Offset)
		p.mu.Unlock()
		began := time.Now()
		pl, err := p.agent.Receipts(ctx, from, func(r loadgen.Receipt) {
			r.Received -= offset
			rs.route(r)
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if failing.IsZero() {
				failing = time.Now()
			}
			if time.Since(failing) > lostAfter {
				p.note(func() { p.err = fmt.Errorf("lost: no receipts for %s (%v)", lostAfter, err) })
				return
			}
			time.Sleep(pullPause)
			continue
		}
		failing, from = time.Time{}, pl.Next
		p.note(func() {
			p.overflow = pl.Overflow
			if pl.Next == pl.End {
				p.caughtUp = began
			}
		})
	}
}

// note changes p under its lock and wakes those that wait on it.
func (p *receiving) note(change func()) {
	p.mu.Lock()
	change()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Sync returns once every receipt the agents had taken when it was called
// has been handed to the route, or an agent is lost, or ctx ends.
func (rs *Receivers) Sync(ctx context.Context) error {
	t0 := time.Now()
	for _, p := range rs.parts {
		for {
			p.mu.Lock()
			done, lost, wait := !p.caughtUp.Before(t0), p.err, p.changed
			p.mu.Unlock()
			if done || lost != nil {
				break
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return fmt.Errorf("receipts of agent %s not all pulled: %w", p.agent, ctx.Err())
			}
		}
	}
	return nil
}

// Uncertainty returns the largest uncertainty of the agents' clocks so
// far: their arrival times are known on the runner's clock to within it.
func (rs *Receivers) Uncertainty() time.Duration {
	var u time.Duration
	for _, p := range rs.parts {
		p.mu.Lock()
		u = max(u, p.uncertainty)
		p.mu.Unlock()
	}
	return u
}

// AgentParts reports each receiving agent's clock and what it could not
// keep, under the load name receiver/<name>.
func (rs *Receivers) AgentParts() []results.AgentPart {
	var out []results.AgentPart
	for _, p := range rs.parts {
		p.mu.Lock()
		ap := results.AgentPart{Load: "receiver/" + rs.name, Agent: p.agent.String(), OffsetMS: ms(p.clock.Offset), OffsetEndMS: ms(p.latest.Offset), UncertaintyMS: ms(p.uncertainty)}
		if err := p.failure(); err != nil {
			ap.Error = err.Error()
		}
		p.mu.Unlock()
		out = append(out, ap)
	}
	return out
}

// failure is why p's receipts are incomplete, or nil; p.mu is held.
func (p *receiving) failure() error {
	var errs []error
	if p.err != nil {
		errs = append(errs, p.err)
	}
	if p.overflow > 0 {
		errs = append(errs, fmt.Errorf("%d receipts did not fit in the agent's buffer: their events count as lost", p.overflow))
	}
	return errors.Join(errs...)
}

// Close hands over what the agents hold (bounded by ctx), stops the pulls
// and returns why some receipts are missing, if any are.
func (rs *Receivers) Close(ctx context.Context) error {
	rs.mu.Lock()
	closed := rs.closed
	rs.closed = true
	rs.mu.Unlock()
	var errs []error
	if !closed {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs = append(errs, rs.Sync(sctx))
		cancel()
		rs.cancel()
		rs.wg.Wait()
	}
	for _, p := range rs.parts {
		p.mu.Lock()
		if err := p.failure(); err != nil {
			errs = append(errs, fmt.Errorf("agent %s: %w", p.agent, err))
		}
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}
