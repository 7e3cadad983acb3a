package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/valyala/fasthttp"
)

// IntendedExtension is the CloudEvents extension attribute that carries an
// event's intended send time as decimal Unix nanoseconds. It is a string:
// the CloudEvents Integer type is 32-bit and cannot hold it.
const IntendedExtension = "intendedns"

// intendedHeader is the extension's binary-mode HTTP header, in the
// canonical form net/http stores header names in.
var intendedHeader = http.CanonicalHeaderKey("ce-" + IntendedExtension)

// maxEventBytes bounds the body of one request a receiver reads: above the
// largest payload a load sends (16 MiB) with room for a structured event's
// JSON around it.
const maxEventBytes = 32 << 20

// Receiver is a CloudEvents HTTP sink that timestamps each event on arrival
// and answers 202 with no body. In binary mode (what senders and Knative
// dispatchers use) it reads only the two headers it needs; a
// structured-mode event is decoded by the SDK's format.
//
// It serves with fasthttp, whose server reuses every buffer of a
// connection, where net/http's allocates a request, its header map and a
// response writer for each event. `make bench` compares its CPU per event
// with a CloudEvents SDK receiver's.
type Receiver struct {
	handle func(Receipt)
	ln     *trackingListener
	srv    *fasthttp.Server
	done   chan struct{}
}

// Receipt is what a receiver learnt from one request.
type Receipt struct {
	ID       string
	Intended int64 // Unix ns, from the intended-time extension; 0 when absent
	Received int64 // Unix ns, when the request arrived
}

// Listen starts a receiver on addr ("127.0.0.1:0" for any free port) that
// hands every receipt to handle, from many goroutines at once.
func Listen(addr string, handle func(Receipt)) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &Receiver{handle: handle, ln: &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}, done: make(chan struct{})}
	r.srv = &fasthttp.Server{
		Handler:               r.serve,
		Name:                  "perfrunner",
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		MaxRequestBodySize:    maxEventBytes,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		// The arrival time is taken first thing in the handler.
		LazyRequestTime: true,
	}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(r.ln)
	}()
	return r, nil
}

// URL returns the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/" }

// Close stops the receiver, waiting for requests in flight up to ctx; then
// it closes the connections still open.
func (r *Receiver) Close(ctx context.Context) error {
	err := r.srv.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		r.ln.closeAll()
		err = nil
	}
	// A server whose Serve has not begun yet shuts down nothing: closing
	// the listener ends that Serve as soon as it begins.
	if cerr := r.ln.Listener.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	<-r.done
	return err
}

// serve accounts for one event.
func (r *Receiver) serve(ctx *fasthttp.RequestCtx) {
	received := time.Now().UnixNano()
	if !ctx.IsPost() {
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	var rc Receipt
	if id := ctx.Request.Header.Peek(idHeader); len(id) > 0 {
		rc = Receipt{ID: string(id), Received: received}
		rc.Intended, _ = strconv.ParseInt(string(ctx.Request.Header.Peek(intendedHeader)), 10, 64)
	} else {
		var ok bool
		if rc, ok = structuredReceipt(string(ctx.Request.Header.ContentType()), ctx.Request.Body(), received); !ok {
			ctx.Error("not a CloudEvent", fasthttp.StatusBadRequest)
			return
		}
	}
	r.handle(rc)
	ctx.SetStatusCode(fasthttp.StatusAccepted)
}

// Handler returns the receiver's accounting as a net/http handler, handing
// every receipt to handle: for a server of the caller's own.
func Handler(handle func(Receipt)) http.Handler { return handler{handle: handle} }

// handler timestamps and answers one request.
type handler struct {
	handle func(Receipt)
}

var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

// ServeHTTP accounts for one event.
func (r handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	received := time.Now().UnixNano()
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var rc Receipt
	if ids := req.Header[idHeader]; len(ids) == 1 {
		rc = Receipt{ID: ids[0], Received: received}
		if v := req.Header[intendedHeader]; len(v) == 1 {
			rc.Intended, _ = strconv.ParseInt(v[0], 10, 64)
		}
		buf := discardBuffers.Get().(*[]byte)
		_, err := io.CopyBuffer(io.Discard, req.Body, *buf)
		discardBuffers.Put(buf)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	} else {
		body, err := io.ReadAll(io.LimitReader(req.Body, maxEventBytes))
		var ok bool
		if err == nil {
			rc, ok = structuredReceipt(req.Header.Get("Content-Type"), body, received)
		}
		if !ok {
			http.Error(w, "not a CloudEvent", http.StatusBadRequest)
			return
		}
	}
	r.handle(rc)
	w.WriteHeader(http.StatusAccepted)
}

// structuredReceipt decodes a structured-mode event (its format named by
// its content type) with the SDK.
func structuredReceipt(contentType string, body []byte, received int64) (Receipt, bool) {
	f := format.Lookup(contentType)
	if f == nil {
		return Receipt{}, false
	}
	var ev event.Event
	if err := f.Unmarshal(body, &ev); err != nil || ev.ID() == "" {
		return Receipt{}, false
	}
	rc := Receipt{ID: ev.ID(), Received: received}
	if v, ok := ev.Extensions()[IntendedExtension]; ok {
		rc.Intended, _ = strconv.ParseInt(fmt.Sprint(v), 10, 64)
	}
	return rc, true
}

// trackingListener remembers the connections it accepted that are still
// open, so that a receiver can close them when a graceful stop runs out of
// time (fasthttp's server leaves them serving).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.(*trackedConn).Conn.Close()
		delete(l.conns, c)
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
