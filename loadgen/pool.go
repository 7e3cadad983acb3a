package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// pool runs sends on at most limit goroutines at once. There is always a
// worker for every send in flight, so a burst of events (a pacer that woke
// late) starts at once rather than queueing behind a busy worker; workers
// beyond what is in flight leave after idleTimeout, so that a burst of slow
// sends does not keep thousands of goroutines for the rest of the run.
// submit never blocks, so the pacer never waits.
type pool struct {
	limit    int64
	jobs     chan Tick
	inFlight atomic.Int64
	work     func(Tick)
	wg       sync.WaitGroup

	mu      sync.Mutex // orders starting and leaving workers against submits
	workers int64
}

func newPool(limit int, work func(Tick)) *pool {
	return &pool{limit: int64(limit), jobs: make(chan Tick, limit), work: work}
}

// submit hands t to a worker, or reports false when limit sends are already
// in flight: the event is dropped, and the caller counts it.
func (p *pool) submit(t Tick) bool {
	p.mu.Lock()
	n := p.inFlight.Add(1)
	if n > p.limit {
		p.inFlight.Add(-1)
		p.mu.Unlock()
		return false
	}
	if p.workers < n {
		p.workers++
		p.wg.Add(1)
		go p.worker()
	}
	p.mu.Unlock()
	p.jobs <- t // never blocks: the channel holds limit jobs
	return true
}

// idleTimeout is how long a worker waits for work before it may leave.
const idleTimeout = 2 * time.Second

func (p *pool) worker() {
	defer p.wg.Done()
	idle := time.NewTimer(idleTimeout)
	defer idle.Stop()
	for {
		select {
		case t, ok := <-p.jobs:
			if !ok {
				return
			}
			p.work(t)
			p.inFlight.Add(-1)
			idle.Reset(idleTimeout)
		case <-idle.C:
			// Leave only while more workers than sends in flight remain:
			// a job queued meanwhile still has a worker.
			p.mu.Lock()
			if p.workers > p.inFlight.Load() {
				p.workers--
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			idle.Reset(idleTimeout)
		}
	}
}

// close waits for every submitted send to finish and stops the workers.
func (p *pool) close() {
	close(p.jobs)
	p.wg.Wait()
}
