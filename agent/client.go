package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/perfrunner/runner/loadgen"
)

// Client is the runner's side of one agent's control port.
type Client struct {
	base string // http://host:port
	http *http.Client
	Info Info
	// The bytes its connections read and wrote: the control traffic.
	read, written atomic.Int64
}

// Dial reads the agent's info at base (http://host:port) and refuses an
// agent of another protocol or version than want.
func Dial(ctx context.Context, base, want string) (*Client, error) {
	c := &Client{base: strings.TrimSuffix(base, "/")}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, c: c}, nil
		},
	}}
	if err := c.call(ctx, http.MethodGet, "/v1/info", nil, &c.Info); err != nil {
		return nil, err
	}
	if c.Info.Protocol != Protocol {
		return nil, fmt.Errorf("agent %s speaks protocol %d, this runner %d", c.base, c.Info.Protocol, Protocol)
	}
	if c.Info.Version != want {
		return nil, fmt.Errorf("agent %s (%s) is runner %s, this runner is %s: agents must be of the runner's own build", c.base, c.Info.Name(), c.Info.Version, want)
	}
	return c, nil
}

// String names the agent in messages.
func (c *Client) String() string { return c.Info.Name() }

// AnswerError is an agent's refusal: its answer arrived, outside 2xx.
// Any other error of a call means the answer did not arrive whole.
type AnswerError struct {
	Agent, Request, Message string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("agent %s: %s: %s", e.Agent, e.Request, e.Message)
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil); an answer outside 2xx is an error carrying the agent's message.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &AnswerError{Agent: c.base, Request: method + " " + path, Message: strings.TrimSpace(string(msg))}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func loadPath(name string) string { return "/v1/loads/" + url.PathEscape(name) }

// Open opens a load on the agent.
func (c *Client) Open(ctx context.Context, cfg loadgen.Config) error {
	return c.call(ctx, http.MethodPut, loadPath(cfg.Name), cfg, nil)
}

// Probe has the agent send one probe event of the load.
func (c *Client) Probe(ctx context.Context, name, id string) (bool, error) {
	var ans ProbeAnswer
	if err := c.call(ctx, http.MethodPost, loadPath(name)+"/probe", ProbeRequest{ID: id}, &ans); err != nil {
		return false, err
	}
	if ans.Error != "" {
		return ans.Acked, fmt.Errorf("%s", ans.Error)
	}
	return ans.Acked, nil
}

// Start has the agent warm the load's connections and send its part from
// start, an instant on the agent's clock.
func (c *Client) Start(ctx context.Context, name string, start time.Time) error {
	return c.call(ctx, http.MethodPost, loadPath(name)+"/start", StartRequest{Start: start.UnixNano()}, nil)
}

// Stop ends the load's pace early; sends in flight finish.
func (c *Client) Stop(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, loadPath(name)+"/stop", nil, nil)
}

// Status returns the load's state.
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, loadPath(name), nil, &st)
	return st, err
}

// Remove stops the load and forgets it.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodDelete, loadPath(name), nil, nil)
}

// Clock is an agent's wall clock against the runner's.
type Clock struct {
	Offset      time.Duration // the agent's clock minus the runner's
	Uncertainty time.Duration // half the round trip it was measured over
}

// MeasureClock reads the agent's clock samples times and keeps the reading
// of the shortest round trip: the agent read its clock within that round
// trip, so its offset from the round trip's middle is known to within half
// of it.
func (c *Client) MeasureClock(ctx context.Context, samples int) (Clock, error) {
	best := Clock{Uncertainty: -1}
	var err error
	for range samples {
		var info Info
		t0 := time.Now()
		if err = c.call(ctx, http.MethodGet, "/v1/info", nil, &info); err != nil {
			continue
		}
		rtt := time.Since(t0)
		mid := t0.UnixNano() + int64(rtt/2)
		if best.Uncertainty < 0 || rtt/2 < best.Uncertainty {
			best = Clock{Offset: time.Duration(info.Now - mid), Uncertainty: rtt / 2}
		}
	}
	if best.Uncertainty < 0 {
		return Clock{}, fmt.Errorf("agent %s: its clock: %w", c.base, err)
	}
	return best, nil
}

// Pull is one answer to a pull of records.
type Pull struct {
	Next  int64  // the cursor to pull from next
	End   int64  // records the load emitted when the answer was cut
	State string // the load's state then
}

// Final reports whether the load's records end at p.Next.
func (p Pull) Final() bool {
	return (p.State == StateDone || p.State == StateFailed) && p.Next == p.End
}

// Records pulls the load's records from cursor from, calling fn for each,
// and acknowledges those before from. A pull cut short calls fn for none
// of its records, so pulling again from the same cursor counts nothing
// twice.
func (c *Client) Records(ctx context.Context, name string, from int64, fn func(loadgen.Record)) (Pull, error) {
	body, h, err := c.pull(ctx, loadPath(name)+"/records", from)
	if err != nil {
		return Pull{}, err
	}
	p := Pull{State: h.Get(headerState)}
	if p.Next, p.End, err = c.cursors(h); err != nil {
		return Pull{}, err
	}
	// Decode all first: a body that does not parse counts nothing.
	recs := make([]loadgen.Record, 0, p.Next-from)
	if err := decodeRecords(body, func(r loadgen.Record) { recs = append(recs, r) }); err != nil {
		return Pull{}, fmt.Errorf("agent %s: %w", c.base, err)
	}
	if int64(len(recs)) != p.Next-from {
		return Pull{}, fmt.Errorf("agent %s: records: %d in a body that should hold %d", c.base, len(recs), p.Next-from)
	}
	for _, r := range recs {
		fn(r)
	}
	return p, nil
}

// pull GETs path?from=N and returns the answer's body and headers; an
// answer other than 200 is an error carrying the agent's message.
func (c *Client) pull(ctx context.Context, path string, from int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?from="+strconv.FormatInt(from, 10), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("agent %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("agent %s: %s: %w", c.base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("agent %s: %s: %s", c.base, path, strings.TrimSpace(string(body)))
	}
	return body, resp.Header, nil
}

// cursors reads a pull answer's next cursor and end.
func (c *Client) cursors(h http.Header) (next, end int64, err error) {
	if next, err = strconv.ParseInt(h.Get(headerNext), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("agent %s: a pull's answer has no cursor", c.base)
	}
	if end, err = strconv.ParseInt(h.Get(headerEnd), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("agent %s: a pull's answer has no end", c.base)
	}
	return next, end, nil
}

// Traffic returns the bytes the runner's connections to the agent read and
// wrote so far, HTTP headers included.
func (c *Client) Traffic() (read, written int64) { return c.read.Load(), c.written.Load() }

// countingConn counts a control connection's bytes.
type countingConn struct {
	net.Conn
	c *Client
}

func (cc *countingConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	cc.c.read.Add(int64(n))
	return n, err
}

func (cc *countingConn) Write(b []byte) (int, error) {
	n, err := cc.Conn.Write(b)
	cc.c.written.Add(int64(n))
	return n, err
}
