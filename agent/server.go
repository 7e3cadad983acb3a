package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/perfrunner/runner/loadgen"
)

// DefaultBuffer is how many records an agent keeps that the runner has not
// pulled yet: about 50 MiB, 50 s of a 10 000/s load's records.
const DefaultBuffer = 1 << 20

// maxBody is the most records one pull answers with.
const maxBody = 64 << 10

// pullWait is how long a pull waits for records when none are new.
const pullWait = 250 * time.Millisecond

// pullLinger is how long a pull that found fewer than maxBody records
// waits for more: a pull per few events would cost the agent more CPU and
// control traffic than the events themselves (`make bench`: 100 µs more
// CPU per event at 1000/s, and 1.2 % of the events' bytes, without it).
const pullLinger = 25 * time.Millisecond

// Server is an agent: it runs the loads a runner opens on it.
type Server struct {
	version string
	buffer  int
	// skew is added to every instant the agent tells and taken from every
	// instant it is told: an agent whose wall clock is off by skew, to
	// test the runner's correction (see SkewEnv).
	skew time.Duration

	mu       sync.Mutex
	loads    map[string]*load
	receipts *receipts         // nil unless the agent receives
	receiver *loadgen.Receiver // the sink that fills receipts
}

// NewServer returns an agent of the runner's version.
func NewServer(version string) *Server {
	return &Server{version: version, buffer: DefaultBuffer, loads: map[string]*load{}}
}

// Handler serves the control protocol.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.info)
	mux.HandleFunc("PUT /v1/loads/{name}", s.open)
	mux.HandleFunc("GET /v1/loads/{name}", s.status)
	mux.HandleFunc("POST /v1/loads/{name}/probe", s.probe)
	mux.HandleFunc("POST /v1/loads/{name}/start", s.start)
	mux.HandleFunc("GET /v1/loads/{name}/records", s.records)
	mux.HandleFunc("POST /v1/loads/{name}/stop", s.stop)
	mux.HandleFunc("DELETE /v1/loads/{name}", s.remove)
	mux.HandleFunc("GET /v1/receipts", s.pullReceipts)
	return mux
}

// Close stops every load and closes its senders, and stops the receiver.
func (s *Server) Close() {
	s.mu.Lock()
	loads, recv := s.loads, s.receiver
	s.loads, s.receiver = map[string]*load{}, nil
	s.mu.Unlock()
	for _, l := range loads {
		l.close()
	}
	if recv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = recv.Close(ctx)
	}
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	host, _ := os.Hostname()
	s.mu.Lock()
	var receiver string
	if s.receiver != nil {
		receiver = s.receiver.URL()
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, Info{
		Protocol: Protocol, Version: s.version, Host: host, Pod: os.Getenv("POD_NAME"), Node: os.Getenv("NODE_NAME"),
		PID: os.Getpid(), Receiver: receiver, Now: time.Now().Add(s.skew).UnixNano(),
	})
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	var cfg loadgen.Config
	if err := readJSON(w, r, 1<<20, &cfg); err != nil {
		httpError(w, http.StatusBadRequest, "the load's configuration: %v", err)
		return
	}
	name := r.PathValue("name")
	if cfg.Name != name {
		httpError(w, http.StatusBadRequest, "the load is named %q, the path %q", cfg.Name, name)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.loads[name]; ok {
		httpError(w, http.StatusConflict, "a load named %q is already open", name)
		return
	}
	cfg.Skew = s.skew
	gen, err := loadgen.New(cfg)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.loads[name] = &load{gen: gen, recs: backlog[loadgen.Record]{limit: s.buffer}, state: StateOpen, done: make(chan struct{})}
	w.WriteHeader(http.StatusCreated)
}

// the load named in r's path, or an error answer.
func (s *Server) load(w http.ResponseWriter, r *http.Request) *load {
	s.mu.Lock()
	l := s.loads[r.PathValue("name")]
	s.mu.Unlock()
	if l == nil {
		httpError(w, http.StatusNotFound, "no load named %q is open on this agent", r.PathValue("name"))
	}
	return l
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if l := s.load(w, r); l != nil {
		st := l.status()
		if st.Stopped != 0 {
			st.Stopped += int64(s.skew)
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func (s *Server) probe(w http.ResponseWriter, r *http.Request) {
	l := s.load(w, r)
	if l == nil {
		return
	}
	var req ProbeRequest
	if err := readJSON(w, r, 1<<10, &req); err != nil || req.ID == "" {
		httpError(w, http.StatusBadRequest, "a probe needs an id")
		return
	}
	acked, err := l.gen.SendProbe(r.Context(), req.ID)
	ans := ProbeAnswer{Acked: acked}
	if err != nil {
		ans.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	l := s.load(w, r)
	if l == nil {
		return
	}
	var req StartRequest
	if err := readJSON(w, r, 1<<10, &req); err != nil || req.Start == 0 {
		httpError(w, http.StatusBadRequest, "a start needs its instant")
		return
	}
	if err := l.begin(time.Unix(0, req.Start).Add(-s.skew)); err != nil {
		httpError(w, http.StatusConflict, "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	l := s.load(w, r)
	if l == nil {
		return
	}
	from, ok := cursor(w, r, "records")
	if !ok {
		return
	}
	body, next, end, state, err := l.pull(r.Context(), from, int64(s.skew))
	writePull(w, body, next, end, err, headerState, state)
}

// cursor reads a pull's from=N, or answers that what needs one.
func cursor(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 0 {
		httpError(w, http.StatusBadRequest, "%s need a cursor: from=N", what)
		return 0, false
	}
	return from, true
}

// writePull answers a pull: the encoded body, its cursors, and one more
// header.
func writePull(w http.ResponseWriter, body []byte, next, end int64, err error, header, value string) {
	if err != nil {
		httpError(w, http.StatusGone, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(headerNext, strconv.FormatInt(next, 10))
	w.Header().Set(headerEnd, strconv.FormatInt(end, 10))
	w.Header().Set(header, value)
	_, _ = w.Write(body)
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	if l := s.load(w, r); l != nil {
		l.cancelRun()
		w.WriteHeader(http.StatusAccepted)
	}
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	l := s.loads[r.PathValue("name")]
	delete(s.loads, r.PathValue("name"))
	s.mu.Unlock()
	if l != nil {
		l.close()
	}
	w.WriteHeader(http.StatusNoContent)
}

// load is one load on the agent and the records the runner has not pulled.
type load struct {
	gen *loadgen.Load

	mu     sync.Mutex
	recs   backlog[loadgen.Record]
	state  string
	err    string
	result loadgen.Result
	cancel context.CancelFunc
	done   chan struct{} // closed when a started load ends
}

// Add keeps a record for the runner; it is the load's output.
func (l *load) Add(r loadgen.Record) {
	l.mu.Lock()
	l.recs.add(r)
	l.mu.Unlock()
}

// begin warms the load's connections and runs it from start.
func (l *load) begin(start time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != StateOpen {
		return fmt.Errorf("the load is %s, not open", l.state)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.state, l.cancel = StateRunning, cancel
	go func() {
		defer close(l.done)
		l.gen.Warm(ctx)
		var res loadgen.Result
		err := ctx.Err()
		if late := time.Since(start); err == nil && late > 0 {
			err = fmt.Errorf("could not start in time: its connections were open %s after the start instant", late.Round(time.Microsecond))
		}
		if err == nil {
			res, err = l.gen.Run(ctx, start, l)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.result, l.state = res, StateDone
		if err != nil {
			l.state, l.err = StateFailed, err.Error()
		}
	}()
	return nil
}

func (l *load) cancelRun() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		l.cancel()
	}
}

// pull answers records from cursor from on, their instants moved by skew
// ns, waiting up to pullWait when none are new and up to pullLinger for
// more when there are few; what is before from is
// acknowledged and forgotten.
func (l *load) pull(ctx context.Context, from, skew int64) (body []byte, next, end int64, state string, err error) {
	began := time.Now()
	deadline := began.Add(pullWait)
	for {
		l.mu.Lock()
		if err := l.recs.ack(from, "records"); err != nil {
			l.mu.Unlock()
			return nil, 0, 0, "", err
		}
		end = l.recs.end()
		recs := l.recs.items
		state = l.state
		final := state == StateDone || state == StateFailed
		lingered := len(recs) > 0 && time.Since(began) >= pullLinger
		if len(recs) >= maxBody || lingered || final || time.Now().After(deadline) || ctx.Err() != nil {
			n := min(len(recs), maxBody)
			body = make([]byte, 0, n*16)
			var prev int64
			for _, r := range recs[:n] {
				r.Intended += skew
				if r.Op == loadgen.OpSent {
					r.Started += skew
					r.Answered += skew
				}
				body = appendRecord(body, r, prev)
				prev = r.Intended
			}
			l.mu.Unlock()
			return body, from + int64(n), end, state, nil
		}
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *load) status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{State: l.state, Error: l.err, SendErrors: l.result.SendErrors, Records: l.recs.end(), Overflow: l.recs.overflow}
	if !l.result.Stopped.IsZero() {
		st.Stopped = l.result.Stopped.UnixNano()
	}
	return st
}

// close stops the load, waits for its sends, and closes its senders.
func (l *load) close() {
	l.cancelRun()
	l.mu.Lock()
	started := l.cancel != nil
	l.mu.Unlock()
	if started {
		<-l.done
	}
	l.gen.Close()
}

// readJSON decodes r's body, at most limit bytes, into v.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), code)
}
