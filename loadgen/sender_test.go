package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestEventsOnTheWire checks what a sender puts on the wire: binary-mode
// CloudEvents with the id, type, source and intended-time extension, and a
// payload of exactly the configured size.
func TestEventsOnTheWire(t *testing.T) {
	type seen struct {
		header http.Header
		body   int
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got <- seen{r.Header.Clone(), int(n)}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := NewSender(srv.URL, 1234, time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ok, err := s.Send(context.Background(), "run-0-17", 1700000000123456789)
	if !ok || err != nil {
		t.Fatalf("Send = %v, %v", ok, err)
	}
	ev := <-got
	want := map[string]string{
		"Ce-Id": "run-0-17", "Ce-Type": EventType, "Ce-Source": EventSource, "Ce-Specversion": "1.0",
		"Ce-Intendedns": "1700000000123456789", "Content-Type": "application/octet-stream",
	}
	for k, v := range want {
		if ev.header.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, ev.header.Get(k), v)
		}
	}
	if ev.body != 1234 {
		t.Errorf("payload %d bytes, want 1234", ev.body)
	}
}

func TestSendFailureIsNotAnAcknowledgement(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s, _ := NewSender(srv.URL, 10, time.Second, 1)
	if ok, err := s.Send(context.Background(), "x-1", 1); ok || err == nil {
		t.Errorf("a 503 counted as acknowledged: %v %v", ok, err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	s, _ = NewSender(slow.URL, 10, 50*time.Millisecond, 1)
	if ok, err := s.Send(context.Background(), "x-1", 1); ok || errorKind(err) != "request timeout" {
		t.Errorf("a slow sink: %v %v (%s)", ok, err, errorKind(err))
	}
}
