package loadgen

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// TestReceiverAcceptsBothModes sends one event in binary mode (the
// sender's) and one in structured mode (the SDK's client), and checks what
// the receiver made of each; a request that is no CloudEvent is refused.
func TestReceiverAcceptsBothModes(t *testing.T) {
	var mu sync.Mutex
	got := map[string]Receipt{}
	r, err := Listen("127.0.0.1:0", func(rc Receipt) {
		mu.Lock()
		got[rc.ID] = rc
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	s, err := NewSender(r.URL(), 100, time.Second, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := time.Now().UnixNano()
	if ok, err := s.Send(context.Background(), "bin-1", 42); !ok {
		t.Fatal(err)
	}

	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(r.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevents.NewEvent()
	ev.SetID("structured-1")
	ev.SetType(EventType)
	ev.SetSource(EventSource)
	ev.SetExtension(IntendedExtension, "43")
	_ = ev.SetData("application/json", map[string]int{"n": 1})
	if res := c.Send(cloudevents.WithEncodingStructured(context.Background()), ev); !cloudevents.IsACK(res) {
		t.Fatalf("structured send: %v", res)
	}

	mu.Lock()
	defer mu.Unlock()
	for id, intended := range map[string]int64{"bin-1": 42, "structured-1": 43} {
		rc, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: no receipt", id)
		case rc.Intended != intended:
			t.Errorf("%s: intended %d, want %d", id, rc.Intended, intended)
		case rc.Received < before || rc.Received > time.Now().UnixNano():
			t.Errorf("%s: received at %d, outside the test", id, rc.Received)
		}
	}

	for _, c := range []struct {
		method, contentType, body string
		want                      int
	}{
		{http.MethodPost, "text/plain", "hello", http.StatusBadRequest},
		{http.MethodPost, "application/cloudevents+json", "{not json", http.StatusBadRequest},
		{http.MethodGet, "", "", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(c.method, r.URL(), strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s %q: %d, want %d", c.method, c.contentType, c.body, resp.StatusCode, c.want)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d receipts, want 2: %v", len(got), got)
	}
}

// TestReceiverCloseEndsOpenConnections checks that Close returns by its
// context's deadline even when a client holds a request half sent, and
// that the port is closed after.
func TestReceiverCloseEndsOpenConnections(t *testing.T) {
	r, err := Listen("127.0.0.1:0", func(Receipt) {})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(r.URL(), "http://"), "/")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers that promise a body that never comes.
	_, _ = conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nCe-Id: a-1\r\nContent-Length: " + strconv.Itoa(1<<20) + "\r\n\r\nabc"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the half-sent request's connection is still open")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the receiver's port still accepts connections")
	}
}

// TestReceiverClosesAtOnce closes receivers right after they start, before
// their server may have begun to serve.
func TestReceiverClosesAtOnce(t *testing.T) {
	for range 50 {
		r, err := Listen("127.0.0.1:0", func(Receipt) {})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Close(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close of a receiver that had just started did not return")
		}
	}
}
