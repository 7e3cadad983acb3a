package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perfrunner/runner/loadgen"
	"github.com/perfrunner/runner/measure"
	"github.com/perfrunner/runner/results"
)

// lostAfter is how long an agent may fail every pull before the run gives
// its part up: its events not yet reported count as dropped.
const lostAfter = 10 * time.Second

// pullPause is the wait between pulls that failed.
const pullPause = 100 * time.Millisecond

// Group is one load sent by several agents: agent k of N sends the events
// whose sequence number is k modulo N, from one start instant, and the
// group hands their records to the measurement as one load's.
type Group struct {
	cfg    loadgen.Config
	events int64
	agents []*Client
	// Which events some agent reported as intended, and as dropped or
	// sent: an agent lost mid-load leaves the rest of its part to be
	// counted as dropped.
	intended, finished bits
	parts              []*part
}

// part is one agent's share of a group's load, as the pulls saw it.
type part struct {
	agent           *Client
	err             error // why the part ended early
	status          Status
	records         int64
	clock, clockEnd Clock // before the load and after it
	clockErr        error
	endMeasured     bool
	dropped         int64 // its events counted as dropped because it ended early
	// lag is its sends' lag behind their intended times (ms): written by
	// its pull only, read once the load ended.
	lag *results.Digest
}

// clockSamples is how many round trips an agent's clock is read over.
const clockSamples = 8

// shifted is the Output of one part: it notes which events the part
// reported (for dropRest) and moves their records from the agent's clock to
// the runner's.
type shifted struct {
	out    loadgen.Output
	offset int64
	g      *Group
	lag    *results.Digest
}

func (s shifted) Add(r loadgen.Record) {
	switch r.Op {
	case loadgen.OpIntended:
		s.g.intended.set(r.Seq)
	case loadgen.OpSent:
		s.lag.Add(float64(r.Started-r.Intended) / 1e6)
		fallthrough
	default:
		s.g.finished.set(r.Seq)
	}
	r.Intended -= s.offset
	if r.Op == loadgen.OpSent {
		r.Started -= s.offset
		r.Answered -= s.offset
	}
	s.out.Add(r)
}

// Opener returns a measure.Load's Open for loads sent by agents.
func Opener(agents []*Client) func(loadgen.Config) (measure.Generator, error) {
	return func(cfg loadgen.Config) (measure.Generator, error) { return Open(context.Background(), agents, cfg) }
}

// Open opens cfg on every agent, each with its part.
func Open(ctx context.Context, agents []*Client, cfg loadgen.Config) (*Group, error) {
	if len(agents) == 0 {
		return nil, errors.New("a load sent by agents needs at least one")
	}
	g := &Group{cfg: cfg.WithDefaults(), agents: agents}
	for _, s := range cfg.Pace {
		g.events += s.Events()
	}
	g.intended, g.finished = newBits(g.events), newBits(g.events)
	for k, a := range agents {
		c := cfg
		c.Part, c.Parts = k, len(agents)
		if err := a.Open(ctx, c); err != nil {
			g.removeFrom(k)
			return nil, err
		}
		g.parts = append(g.parts, &part{agent: a, lag: results.NewDigest()})
	}
	return g, nil
}

// removeFrom removes the load from the first n agents.
func (g *Group) removeFrom(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range g.agents[:n] {
		_ = a.Remove(ctx, g.cfg.Name)
	}
}

// Config returns the whole load's configuration.
func (g *Group) Config() loadgen.Config { return g.cfg }

// Events returns how many events the pace schedules, over all agents.
func (g *Group) Events() int64 { return g.events }

func (g *Group) sendProbe(ctx context.Context, id string) (bool, error) {
	return g.agents[0].Probe(ctx, g.cfg.Name, id)
}

// Probe sends probe events through the first agent until one comes back.
func (g *Group) Probe(ctx context.Context, arrived <-chan string) error {
	return loadgen.ProbeVia(ctx, g.cfg, g.sendProbe, arrived)
}

// ProbeAnswer sends probe events through the first agent until the sink
// acknowledges one.
func (g *Group) ProbeAnswer(ctx context.Context) error {
	return loadgen.ProbeAnswerVia(ctx, g.cfg, g.sendProbe)
}

// Warm measures each agent's clock; each agent warms its connections
// itself when it starts, before the start instant.
func (g *Group) Warm(ctx context.Context) {
	for _, p := range g.parts {
		p.clock, p.clockErr = p.agent.MeasureClock(ctx, clockSamples)
	}
}

// ClockOffsets returns each part's clock offset, as Warm measured it: the
// intended time an event of part k carries is on agent k's clock.
func (g *Group) ClockOffsets() []time.Duration {
	out := make([]time.Duration, len(g.parts))
	for k, p := range g.parts {
		out[k] = p.clock.Offset
	}
	return out
}

// Close removes the load from every agent.
func (g *Group) Close() { g.removeFrom(len(g.agents)) }

// Run starts every agent's part at start and hands their records to out
// until each part ends. When ctx ends, the agents stop their paces and
// their sends in flight finish. A part that could not start, whose agent
// failed, or that could not be pulled for lostAfter ends early: its events
// not reported count as dropped, and the result names the agent.
func (g *Group) Run(ctx context.Context, start time.Time, out loadgen.Output) (loadgen.Result, error) {
	pullCtx := context.WithoutCancel(ctx)
	var stopped atomic.Bool
	var stoppedAt atomic.Int64
	stopAll := context.AfterFunc(ctx, func() {
		stoppedAt.Store(time.Now().UnixNano())
		stopped.Store(true)
		sctx, cancel := context.WithTimeout(pullCtx, 10*time.Second)
		defer cancel()
		for _, a := range g.agents {
			_ = a.Stop(sctx, g.cfg.Name)
		}
	})
	defer stopAll()
	var wg sync.WaitGroup
	for _, p := range g.parts {
		if p.clockErr != nil {
			p.err = p.clockErr
			continue
		}
		if err := g.start(ctx, p.agent, start.Add(p.clock.Offset)); err != nil {
			p.err = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.pull(pullCtx, p, shifted{out: out, offset: int64(p.clock.Offset), g: g, lag: p.lag})
			if p.err == nil {
				if c, err := p.agent.MeasureClock(pullCtx, clockSamples); err == nil {
					p.clockEnd, p.endMeasured = c, true
				}
			}
		}()
	}
	wg.Wait()

	res := loadgen.Result{SendErrors: map[string]int{}}
	var stopAt int64 = -1 // the pace ran to its end
	for k, p := range g.parts {
		for msg, n := range p.status.SendErrors {
			if _, seen := res.SendErrors[msg]; seen || len(res.SendErrors) < 10 {
				res.SendErrors[msg] += n
			}
		}
		if p.status.Stopped != 0 {
			p.status.Stopped -= int64(p.clock.Offset)
			stopAt = max(stopAt, p.status.Stopped)
		}
		if p.err == nil && p.status.State == StateFailed && !stopped.Load() {
			p.err = errors.New(p.status.Error)
		}
		if p.err != nil {
			limit := int64(-1) // every event of the pace
			switch {
			case p.status.Stopped != 0:
				limit = p.status.Stopped
			case stopped.Load():
				limit = stoppedAt.Load()
			}
			p.dropped = g.dropRest(k, start, limit, out)
			res.Parts = append(res.Parts, loadgen.PartLoss{Agent: p.agent.String(), Error: p.err.Error(), Dropped: p.dropped})
		}
	}
	if stopped.Load() {
		if stopAt < 0 {
			stopAt = time.Now().UnixNano()
		}
		res.Stopped = time.Unix(0, stopAt)
		return res, fmt.Errorf("load stopped early: %w", context.Cause(ctx))
	}
	return res, nil
}

// start starts a's part. A start whose answer was lost (a cut connection)
// may have started it: the load's state says, and a start is tried again
// only when it did not.
func (g *Group) start(ctx context.Context, a *Client, start time.Time) error {
	var err error
	for range 3 {
		if err = a.Start(ctx, g.cfg.Name, start); err == nil {
			return nil
		}
		if st, serr := a.Status(ctx, g.cfg.Name); serr == nil && st.State != StateOpen {
			return nil
		}
		if time.Now().After(start) {
			break
		}
	}
	return err
}

// pull hands p's records to out until its load ends, or the agent is lost.
func (g *Group) pull(ctx context.Context, p *part, out shifted) {
	var from int64
	var failing time.Time
	for {
		pl, err := p.agent.Records(ctx, g.cfg.Name, from, out.Add)
		if err != nil {
			if failing.IsZero() {
				failing = time.Now()
			}
			if time.Since(failing) > lostAfter {
				p.err = fmt.Errorf("lost: no records for %s (%v)", lostAfter, err)
				return
			}
			time.Sleep(pullPause)
			continue
		}
		failing = time.Time{}
		p.records += pl.Next - from
		from = pl.Next
		if pl.Final() {
			if p.status, err = g.status(ctx, p.agent); err != nil {
				p.err = err
			} else if p.status.Overflow > 0 {
				p.err = fmt.Errorf("%d records did not fit in the agent's buffer", p.status.Overflow)
			}
			return
		}
	}
}

// status reads the load's state on a after its last pull. A connection
// cut before the answer arrived whole is tried again for as long as a pull
// would be; the agent's refusal is not.
func (g *Group) status(ctx context.Context, a *Client) (Status, error) {
	var refused *AnswerError
	failing := time.Now()
	for {
		st, err := a.Status(ctx, g.cfg.Name)
		if err == nil || errors.As(err, &refused) || ctx.Err() != nil {
			return st, err
		}
		if time.Since(failing) > lostAfter {
			return st, fmt.Errorf("lost: no state for %s (%v)", lostAfter, err)
		}
		time.Sleep(pullPause)
	}
}

// dropRest reports as dropped every event of part k no record finished:
// those never reported get their intended record first, and those intended
// after limit (Unix ns; -1: none), which the pace would not have reached
// before it stopped, none.
func (g *Group) dropRest(k int, start time.Time, limit int64, out loadgen.Output) int64 {
	var n int64
	for seq := int64(k); seq < g.events; seq += int64(len(g.parts)) {
		if g.finished.has(seq) {
			continue
		}
		at, _ := loadgen.IntendedAt(g.cfg.Pace, start, seq)
		if !g.intended.has(seq) {
			if limit >= 0 && at > limit {
				continue
			}
			out.Add(loadgen.Record{Op: loadgen.OpIntended, Seq: seq, Intended: at})
		}
		out.Add(loadgen.Record{Op: loadgen.OpDropped, Seq: seq, Intended: at})
		n++
	}
	return n
}

// AgentParts reports each agent's part of the load once it ran: its clock
// and how it ended.
func (g *Group) AgentParts() []results.AgentPart {
	var out []results.AgentPart
	for _, p := range g.parts {
		ap := results.AgentPart{Load: g.cfg.Name, Agent: p.agent.String(), OffsetMS: ms(p.clock.Offset), UncertaintyMS: ms(p.clock.Uncertainty), Dropped: p.dropped,
			Sends: p.lag.Count(), SendLagP99MS: p.lag.Quantile(0.99)}
		if p.endMeasured {
			ap.OffsetEndMS = ms(p.clockEnd.Offset)
			ap.UncertaintyMS = ms(max(p.clock.Uncertainty, p.clockEnd.Uncertainty))
		}
		if p.err != nil {
			ap.Error = p.err.Error()
		}
		out = append(out, ap)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// bits is a set of sequence numbers, safe for concurrent use.
type bits []atomic.Uint64

func newBits(n int64) bits { return make(bits, (n+63)/64) }

func (b bits) set(i int64) {
	if i >= 0 && i>>6 < int64(len(b)) {
		b[i>>6].Or(1 << (i & 63))
	}
}

func (b bits) has(i int64) bool { return b[i>>6].Load()&(1<<(i&63)) != 0 }
