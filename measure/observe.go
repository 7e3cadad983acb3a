package measure

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/perfrunner/runner/results"
)

// observeEvery is how often a load reads the observed containers' counters.
const observeEvery = time.Second

// observeGiveUp is how many readings in a row may fail, before any worked,
// before a load stops trying: what is not allowed now will not be in a
// second.
const observeGiveUp = 5

// observeCatchUp bounds how long a load waits, after its drain, for
// readings taken after its last pace step ended: the kubelet refreshes
// its figures every 10 to 15 s.
const observeCatchUp = 20 * time.Second

// observe reads o every observeEvery until the returned stop is called,
// feeding the recorder. Stop waits, at most observeCatchUp, until every
// container's reading is from after end, so that the last pace step is
// covered.
func (m *Measurement) observe(ctx context.Context, o results.ResourceReader, end time.Time, status func(string)) (stop func()) {
	if o == nil {
		return func() {}
	}
	info := o.Info()
	m.rec.SetResourceInfo(info)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var oldest time.Time // the oldest container's reading of the last read
		worked, failures := false, 0
		read := func() bool {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			samples, err := o.Read(rctx)
			cancel()
			if err == nil && len(samples) == 0 {
				err = fmt.Errorf("no container of the systems under test was found")
			}
			if err != nil {
				failures++
				failed := info
				if worked {
					failed.Failed = err.Error()
				} else {
					failed.Unavailable = err.Error()
				}
				m.rec.SetResourceInfo(failed)
				return worked || failures < observeGiveUp
			}
			info = o.Info() // the source may be known only now
			m.rec.SetResourceInfo(info)
			worked, failures = true, 0
			oldest = samples[0].At
			for _, s := range samples[1:] {
				if s.At.Before(oldest) {
					oldest = s.At
				}
			}
			if err := m.rec.AddResources(samples); err != nil {
				failed := info
				failed.Failed = err.Error()
				m.rec.SetResourceInfo(failed)
				return false
			}
			return true
		}
		t := time.NewTicker(observeEvery)
		defer t.Stop()
		if !read() {
			return
		}
		for {
			select {
			case <-done:
				// A load that stopped early ended before its pace did.
				if now := time.Now(); now.Before(end) {
					end = now
				}
				deadline := time.Now().Add(observeCatchUp)
				for worked && oldest.Before(end) && time.Now().Before(deadline) && ctx.Err() == nil {
					status(fmt.Sprintf("waiting for the resource readings to pass the load's end (the newest is %s older)", end.Sub(oldest).Round(time.Second)))
					select {
					case <-ctx.Done():
					case <-t.C:
						read()
					}
				}
				return
			case <-t.C:
				if !read() {
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Self reads the runner's own process: on the local target, the twins and
// the load path run in it.
type Self struct{}

// Info says what Self reads.
func (Self) Info() results.ResourceInfo {
	return results.ResourceInfo{Source: "the runner's own process (local target: the twins, the receivers and the load path run in it): getrusage and resident memory"}
}

// Read reads the process's CPU time and resident memory.
func (Self) Read(context.Context) ([]results.ResourceSample, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}
	at := time.Now()
	cpu := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	rss, err := residentBytes()
	if err != nil {
		return nil, err
	}
	return []results.ResourceSample{{
		ContainerRef: results.ContainerRef{Group: results.GroupRunner, Pod: "runner", Container: strconv.Itoa(os.Getpid())},
		At:           at, CPUSeconds: cpu, MemoryBytes: rss,
	}}, nil
}

// residentBytes is the process's resident set, from /proc/self/statm.
func residentBytes() (float64, error) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/self/statm: %q", data)
	}
	pages, err := strconv.ParseFloat(fields[1], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * float64(os.Getpagesize()), nil
}
