package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Event attributes every sender uses.
const (
	EventType   = "dev.perfrunner.load"
	EventSource = "/perfrunner/sender"
)

// Sender sends CloudEvents in binary mode to one target over one tuned
// transport, with no retries and a per-request timeout. It is safe for
// concurrent use.
type Sender struct {
	protocol *cehttp.Protocol
	payload  []byte
	timeout  time.Duration
	tr       *http.Transport
}

// NewSender returns a sender to target whose events carry payloadBytes
// bytes of data, built once. maxConns bounds its connections, idle or not
// (the SDK's default transport keeps two idle ones per host, which under load
// leaves thousands of sockets in TIME_WAIT; no bound at all runs out of file
// descriptors when a sink stalls). A send that finds every connection busy
// waits for one, and that wait counts in its latency.
func NewSender(target string, payloadBytes int, timeout time.Duration, maxConns int) (*Sender, error) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ResponseHeaderTimeout: timeout,
		// Room for the headers and the whole payload: one write per
		// request instead of three with the default 4 KiB.
		WriteBufferSize: payloadBytes + 4096,
	}
	// The per-request context carries the timeout; a Client.Timeout would
	// add a second timer to every request.
	p, err := cehttp.New(cehttp.WithTarget(target), cehttp.WithClient(http.Client{Transport: tr}))
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	return &Sender{protocol: p, payload: payload(payloadBytes), timeout: timeout, tr: tr}, nil
}

// payload returns n bytes of printable data.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// sender is what a load sends through: CloudEvents over HTTP, or records
// to a Kafka topic.
type sender interface {
	Send(ctx context.Context, id string, intended int64) (bool, error)
	Close()
}

// newSender returns the sender for cfg's target.
func newSender(cfg Config) (sender, error) {
	if strings.HasPrefix(cfg.URL, KafkaScheme+"://") {
		return NewKafkaSender(cfg.URL, cfg.PayloadBytes, cfg.RequestTimeout)
	}
	return NewSender(cfg.URL, cfg.PayloadBytes, cfg.RequestTimeout, cfg.Connections)
}

// Send sends the event id with its intended time (Unix ns) and reports
// whether the sink acknowledged it with a 2xx.
func (s *Sender) Send(ctx context.Context, id string, intended int64) (bool, error) {
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetType(EventType)
	ev.SetSource(EventSource)
	ev.SetExtension(IntendedExtension, strconv.FormatInt(intended, 10))
	ev.DataEncoded = s.payload
	ev.SetDataContentType("application/octet-stream")
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// The protocol directly, not a client.Client: the event is valid by
	// construction, and the client's validation and observability hooks
	// cost CPU on every event.
	res := s.protocol.Send(ctx, (*binding.EventMessage)(&ev))
	if protocol.IsACK(res) {
		return true, nil
	}
	return false, res
}

// Close closes the sender's idle connections.
func (s *Sender) Close() { s.tr.CloseIdleConnections() }
