package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// pool runs sends on at most limit goroutines at once. Workers are started
// on demand and leave after idleTimeout without work, so that a burst of
// slow sends does not keep thousands of goroutines (and their stacks) for
// the rest of the run; submit never blocks, so the pacer never waits.
type pool struct {
	limit    int64
	jobs     chan Tick
	inFlight atomic.Int64
	idle     atomic.Int64
	workers  atomic.Int64
	work     func(Tick)
	wg       sync.WaitGroup
}

func newPool(limit int, work func(Tick)) *pool {
	return &pool{limit: int64(limit), jobs: make(chan Tick, limit), work: work}
}

// submit hands t to a worker, or reports false when limit sends are already
// in flight: the event is dropped, and the caller counts it.
func (p *pool) submit(t Tick) bool {
	if p.inFlight.Add(1) > p.limit {
		p.inFlight.Add(-1)
		return false
	}
	if p.idle.Load() == 0 && p.workers.Load() < p.limit {
		p.workers.Add(1)
		p.wg.Add(1)
		go p.worker()
	}
	p.jobs <- t // never blocks: the channel holds limit jobs
	return true
}

// idleTimeout is how long a worker waits for work before it leaves.
const idleTimeout = 2 * time.Second

func (p *pool) worker() {
	defer p.wg.Done()
	defer p.workers.Add(-1)
	idle := time.NewTimer(idleTimeout)
	defer idle.Stop()
	for {
		p.idle.Add(1)
		select {
		case t, ok := <-p.jobs:
			p.idle.Add(-1)
			if !ok {
				return
			}
			p.work(t)
			p.inFlight.Add(-1)
			idle.Reset(idleTimeout)
		case <-idle.C:
			p.idle.Add(-1)
			return
		}
	}
}

// close waits for every submitted send to finish and stops the workers.
func (p *pool) close() {
	close(p.jobs)
	p.wg.Wait()
}
