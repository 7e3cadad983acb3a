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

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// IntendedExtension is the CloudEvents extension attribute that carries an
// event's intended send time as decimal Unix nanoseconds. It is a string:
// the CloudEvents Integer type is 32-bit and cannot hold it.
const IntendedExtension = "intendedns"

// intendedHeader is the extension's binary-mode HTTP header, in the
// canonical form net/http stores header names in.
var intendedHeader = http.CanonicalHeaderKey("ce-" + IntendedExtension)

// Receiver is a CloudEvents HTTP sink that timestamps each event on arrival
// and answers 202 with no body. In binary mode (what senders and Knative
// dispatchers use) it reads only the two headers it needs and discards the
// body; structured-mode requests go through the SDK.
type Receiver struct {
	handler
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

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
	r := &Receiver{handler: handler{handle: handle}, ln: ln, done: make(chan struct{})}
	r.srv = &http.Server{Handler: r.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

// URL returns the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/" }

// Close stops the receiver, waiting for requests in flight up to ctx.
func (r *Receiver) Close(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = r.srv.Close()
	}
	<-r.done
	return err
}

// Handler returns the receiver's HTTP handler alone, handing every receipt
// to handle: for a server of the caller's own.
func Handler(handle func(Receipt)) http.Handler { return handler{handle: handle} }

// handler timestamps and answers one request.
type handler struct {
	handle func(Receipt)
}

// ServeHTTP accounts for one event.
func (r handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	received := time.Now().UnixNano()
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var rc Receipt
	if ids := req.Header["Ce-Id"]; len(ids) == 1 {
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
		var ok bool
		if rc, ok = structuredReceipt(req, received); !ok {
			http.Error(w, "not a CloudEvent", http.StatusBadRequest)
			return
		}
	}
	r.handle(rc)
	w.WriteHeader(http.StatusAccepted)
}

// structuredReceipt decodes a request that is not in binary mode.
func structuredReceipt(req *http.Request, received int64) (Receipt, bool) {
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer msg.Finish(nil)
	ev, err := binding.ToEvent(req.Context(), msg)
	if err != nil {
		return Receipt{}, false
	}
	rc := Receipt{ID: ev.ID(), Received: received}
	if v, ok := ev.Extensions()[IntendedExtension]; ok {
		rc.Intended, _ = strconv.ParseInt(fmt.Sprint(v), 10, 64)
	}
	return rc, true
}
