package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/valyala/fasthttp"
)

// Event attributes every sender uses.
const (
	EventType   = "dev.perfrunner.load"
	EventSource = "/perfrunner/sender"
)

// idleConnection is how long a sender keeps a connection no send used.
const idleConnection = 5 * time.Second

// idHeader is the binary-mode header of the CloudEvents id, as the SDK's
// HTTP binding names it.
var idHeader = http.CanonicalHeaderKey("ce-id")

// Sender sends CloudEvents in binary mode to one target over HTTP/1.1, with
// no retries and a per-request timeout. It is safe for concurrent use.
//
// The transport is fasthttp's client: it writes a request and reads its
// answer on the caller's goroutine and allocates nothing per request,
// where net/http's transport crosses three goroutines per request (the
// caller's, the connection's writer and its reader). The headers are the SDK's
// own: the SDK's HTTP binding writes every attribute of a template event
// once, and each send only sets its event's id and intended time.
type Sender struct {
	client  *fasthttp.HostClient
	timeout time.Duration
	conns   *connGate
	// reqs holds idle requests, the template's headers and payload in
	// place: a free list rather than a sync.Pool, which every GC empties
	// (a young process collects often, and refilled the pool by copying
	// the template for thousands of sends).
	reqs     chan *fasthttp.Request
	template *fasthttp.Request
}

// NewSender returns a sender to target whose events carry payloadBytes
// bytes of data, built once. maxConns bounds its connections, idle or not
// (an unbounded client runs out of file descriptors when a sink stalls). A
// send that finds every connection busy waits for one, and that wait counts
// in its latency; the sender opens another connection only when a send has
// waited a millisecond (see growAfter), so it starts with one.
func NewSender(target string, payloadBytes int, timeout time.Duration, maxConns int) (*Sender, error) {
	return newHTTPSender(target, payloadBytes, timeout, 1, maxConns)
}

// newHTTPSender is NewSender with room for startConns connections before
// any send has to wait.
func newHTTPSender(target string, payloadBytes int, timeout time.Duration, startConns, maxConns int) (*Sender, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sender: %q is not an http:// or https:// URL", target)
	}
	template, err := templateRequest(target, payload(payloadBytes))
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	s := &Sender{
		client: &fasthttp.HostClient{
			Addr:               addr,
			IsTLS:              u.Scheme == "https",
			Name:               "perfrunner",
			MaxConns:           maxConns,
			MaxConnWaitTimeout: timeout,
			// Short, so that the client's cleaner, which wakes once per
			// this duration and ends only when no connection is left,
			// is gone soon after the sender closes.
			MaxIdleConnDuration: idleConnection,
			// Go's own dialer: fasthttp's default one keeps a DNS cache
			// with a goroutine of its own for the life of the process.
			DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
				return (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).Dial("tcp", addr)
			},
			// No retries: an event is sent once, and what fails counts.
			MaxIdemponentCallAttempts: 1,
			RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			// Room for the headers and the whole payload: one write
			// per request.
			WriteBufferSize: payloadBytes + 4096,
		},
		timeout:  timeout,
		conns:    newConnGate(startConns, maxConns),
		reqs:     make(chan *fasthttp.Request, maxConns),
		template: template,
	}
	return s, nil
}

// templateRequest returns a request carrying every header the SDK's HTTP
// binding writes for an event of this load, the id and intended time
// included (each send sets those two again), and the payload.
func templateRequest(target string, data []byte) (*fasthttp.Request, error) {
	ev := cloudevents.NewEvent()
	ev.SetID("template")
	ev.SetType(EventType)
	ev.SetSource(EventSource)
	ev.SetExtension(IntendedExtension, "0")
	ev.SetDataContentType("application/octet-stream")
	ev.DataEncoded = data
	hreq, err := http.NewRequest(http.MethodPost, target, nil)
	if err != nil {
		return nil, err
	}
	if err := cehttp.WriteRequest(context.Background(), (*binding.EventMessage)(&ev), hreq); err != nil {
		return nil, err
	}
	req := new(fasthttp.Request)
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI(target)
	names := make([]string, 0, len(hreq.Header))
	for k := range hreq.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range hreq.Header[k] {
			req.Header.Add(k, v)
		}
	}
	req.SetBodyRaw(data)
	return req, nil
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
	return newHTTPSender(cfg.URL, cfg.PayloadBytes, cfg.RequestTimeout, cfg.warmConnections(), cfg.Connections)
}

// StatusError is the error of a send the sink answered without a 2xx.
type StatusError struct{ Code int }

func (e StatusError) Error() string {
	return "answered " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
}

// errTimeout is a send that had no answer within its timeout.
var errTimeout = errors.New("request timeout")

// Send sends the event id with its intended time (Unix ns) and reports
// whether the sink acknowledged it with a 2xx. The request timeout, or ctx's
// deadline when it is sooner, bounds the send, the wait for a connection
// included.
func (s *Sender) Send(ctx context.Context, id string, intended int64) (bool, error) {
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if !s.conns.acquire(deadline) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		return false, errTimeout
	}
	defer s.conns.release()
	req := s.request()
	defer s.release(req)
	req.Header.Set(idHeader, id)
	var buf [20]byte
	req.Header.SetBytesV(intendedHeader, strconv.AppendInt(buf[:0], intended, 10))
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := s.client.DoDeadline(req, resp, deadline); err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) {
			return false, errTimeout
		}
		return false, err
	}
	if code := resp.StatusCode(); code < 200 || code > 299 {
		return false, StatusError{code}
	}
	return true, nil
}

// request returns an idle request, or a new one.
func (s *Sender) request() *fasthttp.Request {
	select {
	case req := <-s.reqs:
		return req
	default:
	}
	req := new(fasthttp.Request)
	s.template.CopyTo(req)
	// The payload is shared by every request, never copied.
	req.SetBodyRaw(s.template.Body())
	return req
}

// release keeps req for a later send, as many as there are connections.
func (s *Sender) release(req *fasthttp.Request) {
	select {
	case s.reqs <- req:
	default:
	}
}

// Close closes the sender's idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }
