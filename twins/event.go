package twins

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/twmb/franz-go/pkg/kgo"
)

// event is a CloudEvent as the twins pass it along: its context attributes
// by their lower-case names (id, type, source, specversion and extensions)
// and its data, untouched.
type event struct {
	attrs       map[string]string
	contentType string
	data        []byte
}

func (e *event) id() string { return e.attrs["id"] }

// required are the attributes without which a message is not a CloudEvent.
var required = [...]string{"id", "source", "specversion", "type"}

func (e *event) valid() error {
	for _, a := range required {
		if e.attrs[a] == "" {
			return fmt.Errorf("not a CloudEvent: no %s attribute", a)
		}
	}
	return nil
}

// readEvent reads a CloudEvent from an HTTP request: binary mode by hand
// (what senders and dispatchers use, and cheap), structured mode through the
// SDK.
func readEvent(req *http.Request) (*event, error) {
	ct := req.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/cloudevents") && !strings.HasPrefix(ct, "application/cloudevents-batch") {
		return readStructured(req)
	}
	ev := &event{attrs: make(map[string]string, 8), contentType: ct}
	for k, v := range req.Header {
		if len(k) > 3 && strings.EqualFold(k[:3], "ce-") && len(v) > 0 {
			ev.attrs[strings.ToLower(k[3:])] = v[0]
		}
	}
	if err := ev.valid(); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	ev.data = data
	return ev, nil
}

func readStructured(req *http.Request) (*event, error) {
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer msg.Finish(nil)
	ce, err := binding.ToEvent(req.Context(), msg)
	if err != nil {
		return nil, fmt.Errorf("not a CloudEvent: %w", err)
	}
	ev := &event{attrs: map[string]string{
		"id": ce.ID(), "source": ce.Source(), "specversion": ce.SpecVersion(), "type": ce.Type(),
	}, contentType: ce.DataContentType(), data: ce.Data()}
	if s := ce.Subject(); s != "" {
		ev.attrs["subject"] = s
	}
	for k, v := range ce.Extensions() {
		ev.attrs[k] = fmt.Sprint(v)
	}
	return ev, nil
}

// request builds a binary-mode HTTP request carrying ev to url.
func (e *event) request(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(e.data))
	if err != nil {
		return nil, err
	}
	for k, v := range e.attrs {
		req.Header["Ce-"+k] = []string{v}
	}
	if e.contentType != "" {
		req.Header.Set("Content-Type", e.contentType)
	}
	return req, nil
}

// record builds a Kafka record carrying ev in binary mode (ce_ headers), as
// Knative's Kafka components write them. The key spreads events over the
// partitions.
func (e *event) record(topic string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Key: []byte(e.id()), Value: e.data, Headers: make([]kgo.RecordHeader, 0, len(e.attrs)+1)}
	for k, v := range e.attrs {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "ce_" + k, Value: []byte(v)})
	}
	if e.contentType != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: "content-type", Value: []byte(e.contentType)})
	}
	return r
}

// fromRecord reads a binary-mode CloudEvent from a Kafka record. A record
// that is not one becomes an event as Knative's Kafka source makes them:
// its coordinates are its id and source.
func fromRecord(r *kgo.Record, source string) *event {
	ev := &event{attrs: make(map[string]string, 8), data: r.Value}
	for _, h := range r.Headers {
		switch {
		case strings.HasPrefix(h.Key, "ce_"):
			ev.attrs[h.Key[3:]] = string(h.Value)
		case strings.EqualFold(h.Key, "content-type"):
			ev.contentType = string(h.Value)
		}
	}
	if ev.valid() != nil {
		ev.attrs = map[string]string{
			"id":          fmt.Sprintf("partition:%d/offset:%d", r.Partition, r.Offset),
			"source":      source + "#" + r.Topic,
			"specversion": "1.0",
			"type":        "dev.knative.kafka.event",
		}
		if len(r.Key) > 0 {
			ev.attrs["key"] = string(r.Key)
		}
	}
	return ev
}
