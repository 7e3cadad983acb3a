package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// request is what a sink saw of one request.
type request struct {
	header http.Header
	event  *event.Event
	err    error
}

// capture serves a sink that parses every request with the SDK.
func capture(t *testing.T) (string, <-chan request) {
	t.Helper()
	got := make(chan request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		got <- request{header: r.Header.Clone(), event: ev, err: err}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

// TestSenderWireMatchesTheSDK sends one event with the sender and the same
// event with the CloudEvents SDK's own HTTP protocol, parses both with the
// SDK, and compares them attribute by attribute, data and CloudEvents
// headers included.
func TestSenderWireMatchesTheSDK(t *testing.T) {
	const id, intended, size = "run-0-17", int64(1700000000123456789), 1234
	url, got := capture(t)

	s, err := NewSender(url, size, time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Send(context.Background(), id, intended); !ok || err != nil {
		t.Fatalf("Send = %v, %v", ok, err)
	}
	ours := <-got

	p, err := cehttp.New(cehttp.WithTarget(url))
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetType(EventType)
	ev.SetSource(EventSource)
	ev.SetExtension(IntendedExtension, strconv.FormatInt(intended, 10))
	ev.SetDataContentType("application/octet-stream")
	ev.DataEncoded = payload(size)
	if res := p.Send(context.Background(), (*binding.EventMessage)(&ev)); !cloudevents.IsACK(res) {
		t.Fatalf("SDK send: %v", res)
	}
	sdk := <-got

	for name, r := range map[string]request{"sender": ours, "SDK": sdk} {
		if r.err != nil {
			t.Fatalf("the %s's request does not parse as a CloudEvent: %v", name, r.err)
		}
		if err := r.event.Validate(); err != nil {
			t.Errorf("the %s's event is invalid: %v", name, err)
		}
	}
	a, b := ours.event, sdk.event
	for _, c := range []struct {
		attr       string
		ours, sdks any
	}{
		{"specversion", a.SpecVersion(), b.SpecVersion()},
		{"id", a.ID(), b.ID()},
		{"type", a.Type(), b.Type()},
		{"source", a.Source(), b.Source()},
		{"subject", a.Subject(), b.Subject()},
		{"time", a.Time(), b.Time()},
		{"dataschema", a.DataSchema(), b.DataSchema()},
		{"datacontenttype", a.DataContentType(), b.DataContentType()},
		{"extensions", a.Extensions(), b.Extensions()},
		{"data", a.Data(), b.Data()},
	} {
		if !reflect.DeepEqual(c.ours, c.sdks) {
			t.Errorf("%s: sender %v, SDK %v", c.attr, c.ours, c.sdks)
		}
	}
	if a.ID() != id || len(a.Data()) != size || a.Extensions()[IntendedExtension] != strconv.FormatInt(intended, 10) {
		t.Errorf("the event is not the one sent: id %q, %d bytes, extensions %v", a.ID(), len(a.Data()), a.Extensions())
	}
	// The CloudEvents headers themselves, as the SDK writes them.
	for k, v := range sdk.header {
		if strings.HasPrefix(k, "Ce-") || k == "Content-Type" || k == "Content-Length" {
			if !reflect.DeepEqual(ours.header[k], v) {
				t.Errorf("header %s: sender %q, SDK %q", k, ours.header[k], v)
			}
		}
	}
	for k := range ours.header {
		if strings.HasPrefix(k, "Ce-") && sdk.header[k] == nil {
			t.Errorf("header %s: the sender sends it, the SDK does not", k)
		}
	}
}

// TestSenderReusesConnections checks that sends share their connections:
// a hundred sequential sends open one.
func TestSenderReusesConnections(t *testing.T) {
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conns[r.RemoteAddr] = true
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := NewSender(srv.URL, 100, time.Second, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if ok, err := s.Send(context.Background(), "x-"+strconv.Itoa(i), 1); !ok {
			t.Fatal(err)
		}
	}
	if len(conns) != 1 {
		t.Errorf("100 sequential sends used %d connections, want 1", len(conns))
	}
}
