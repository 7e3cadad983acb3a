package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/perfrunner/runner/pace"
	"github.com/perfrunner/runner/results"
)

// request builds a binary-mode CloudEvents request with an 8 KiB payload.
func request(seq int) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 8192)))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "bench-"+strconv.Itoa(seq))
	req.Header.Set("Ce-Type", EventType)
	req.Header.Set("Ce-Source", EventSource)
	req.Header.Set("Ce-Intendedns", strconv.FormatInt(time.Now().UnixNano(), 10))
	req.Header.Set("Content-Type", "application/octet-stream")
	return req
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// perEvent runs handle over batches of fresh requests (built outside the
// timer) and reports the time per event.
func perEvent(b *testing.B, handle func(*http.Request)) {
	reqs := make([]*http.Request, 1024)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for j := range reqs {
			reqs[j] = request(j)
		}
		b.StartTimer()
		for _, req := range reqs {
			handle(req)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reqs))/1000, "µs/event")
}

// BenchmarkReceive compares the receiver's handler with the CloudEvents SDK's
// full parse of the same request; the ratio of the two is what matters.
func BenchmarkReceive(b *testing.B) {
	b.Run("receiver", func(b *testing.B) {
		router := NewRouter(nil)
		router.Register(NewStream("bench", 1024))
		recv := &Receiver{router: router}
		w := &discardWriter{h: http.Header{}}
		perEvent(b, func(req *http.Request) { recv.ServeHTTP(w, req) })
	})
	b.Run("sdk", func(b *testing.B) {
		perEvent(b, func(req *http.Request) {
			msg := cehttp.NewMessageFromHttpRequest(req)
			if _, err := binding.ToEvent(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
			msg.Finish(nil)
		})
	})
}

// BenchmarkPacerLateness measures how late the pacer fires events, against a
// plain time.Sleep pacer in the same run: p50 and p99 lateness in µs.
func BenchmarkPacerLateness(b *testing.B) {
	steps := []pace.Step{{RPS: 5000, Duration: time.Second}}
	b.Run("clock_nanosleep", func(b *testing.B) {
		d := results.NewDigest()
		for b.Loop() {
			_ = Pace(context.Background(), steps, time.Now().Add(10*time.Millisecond), func(t Tick) {
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
