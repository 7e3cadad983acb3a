package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// BenchmarkPacerLateness measures how late the pacer fires events when it
// wakes for each one (a tick shorter than their interval), against a plain
// time.Sleep pacer in the same run: p50 and p99 lateness in µs.
func BenchmarkPacerLateness(b *testing.B) {
	steps := []pace.Step{{RPS: 5000, Duration: time.Second}}
	b.Run("timerfd", func(b *testing.B) {
		d := results.NewDigest()
		for b.Loop() {
			_ = Pace(context.Background(), steps, time.Now().Add(10*time.Millisecond), time.Nanosecond, func(t Tick) {
				d.Add(float64(time.Now().UnixNano()-t.Intended) / 1e3)
			})
		}
		b.ReportMetric(d.Quantile(0.5), "p50-µs")
		b.ReportMetric(d.Quantile(0.99), "p99-µs")
	})
	b.Run("time.Sleep", func(b *testing.B) {
		d := results.NewDigest()
		for b.Loop() {
			start := time.Now().Add(10 * time.Millisecond)
			interval := time.Second / 5000
			for i := 0; i < 5000; i++ {
				intended := start.Add(time.Duration(i) * interval)
				time.Sleep(time.Until(intended))
				d.Add(float64(time.Since(intended).Nanoseconds()) / 1e3)
			}
		}
		b.ReportMetric(d.Quantile(0.5), "p50-µs")
		b.ReportMetric(d.Quantile(0.99), "p99-µs")
	})
}
