package twins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// server is a twin's HTTP endpoint on loopback.
type server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *server) url() string { return "http://" + s.ln.Addr().String() }

// close stops accepting, waits for requests in flight up to ctx, then
// closes what is left.
func (s *server) close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// ingress accepts CloudEvents over HTTP and hands each to accept; an error
// from accept is the answer's status.
func ingress(accept func(*http.Request, *event) (status int, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "CloudEvents are POSTed", http.StatusMethodNotAllowed)
			return
		}
		ev, err := readEvent(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, err := accept(req, ev)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		w.WriteHeader(status)
	})
}

// errFull is the answer of an ingress whose backlog is full.
var errFull = fmt.Errorf("backlog full: the twin is over its capacity")
