package measure

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

	"github.com/perfrunner/runner/loadgen"
)

// request builds a binary-mode CloudEvents request with an 8 KiB payload.
func request(seq int) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 8192)))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "bench-"+strconv.Itoa(seq))
	req.Header.Set("Ce-Type", loadgen.EventType)
	req.Header.Set("Ce-Source", loadgen.EventSource)
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
		recv := loadgen.Handler(router.Route)
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
