package loadgen

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBurstStartsAtOnce checks that a burst of submits runs concurrently,
// not queued behind one busy worker.
func TestBurstStartsAtOnce(t *testing.T) {
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	p := newPool(100, func(Tick) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		running.Add(-1)
		wg.Done()
	})
	wg.Add(1)
	p.submit(Tick{})
	wg.Wait() // one idle worker now exists
	start := time.Now()
	wg.Add(50)
	for i := 0; i < 50; i++ {
		if !p.submit(Tick{Seq: int64(i)}) {
			t.Fatal("dropped below the limit")
		}
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed > 500*time.Millisecond || peak.Load() < 40 {
		t.Errorf("50 sends of 50 ms took %s with at most %d at once", elapsed, peak.Load())
	}
	p.close()
}

// TestDropsBeyondTheLimit checks the in-flight cap.
func TestDropsBeyondTheLimit(t *testing.T) {
	release := make(chan struct{})
	p := newPool(3, func(Tick) { <-release })
	accepted := 0
	for i := 0; i < 5; i++ {
		if p.submit(Tick{}) {
			accepted++
		}
	}
	close(release)
	p.close()
	if accepted != 3 {
		t.Errorf("accepted %d of 5 with a limit of 3", accepted)
	}
}
