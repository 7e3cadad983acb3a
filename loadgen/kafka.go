package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaScheme is the URL scheme of a Kafka topic as a sink:
// kafka://host:port[,host:port…]/topic.
const KafkaScheme = "kafka"

// KafkaSender produces events straight to a Kafka topic as binary-mode
// CloudEvents (ce_ headers, the data as the record's value), as Knative's
// Kafka components read them. A send is acknowledged when every in-sync
// replica has the record.
type KafkaSender struct {
	client  *kgo.Client
	topic   string
	payload []byte
	timeout time.Duration
	fixed   []kgo.RecordHeader
}

// NewKafkaSender returns a sender to target, a kafka:// URL.
func NewKafkaSender(target string, payloadBytes int, timeout time.Duration) (*KafkaSender, error) {
	brokers, topic, err := ParseKafkaURL(target)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka sender: %w", err)
	}
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	return &KafkaSender{client: cl, topic: topic, payload: payload(payloadBytes), timeout: timeout,
		fixed: []kgo.RecordHeader{h("ce_specversion", "1.0"), h("ce_type", EventType), h("ce_source", EventSource), h("content-type", "application/octet-stream")}}, nil
}

// ParseKafkaURL splits kafka://host:port[,host:port…]/topic.
func ParseKafkaURL(target string) (brokers []string, topic string, err error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != KafkaScheme || u.Host == "" || len(u.Path) < 2 || strings.Contains(u.Path[1:], "/") {
		return nil, "", fmt.Errorf("%q is not a Kafka sink: want kafka://host:port[,host:port…]/topic", target)
	}
	return strings.Split(u.Host, ","), u.Path[1:], nil
}

// Send produces the event id with its intended time (Unix ns) and reports
// whether the broker acknowledged it.
func (s *KafkaSender) Send(ctx context.Context, id string, intended int64) (bool, error) {
	headers := make([]kgo.RecordHeader, len(s.fixed), len(s.fixed)+2)
	copy(headers, s.fixed)
	headers = append(headers,
		kgo.RecordHeader{Key: "ce_id", Value: []byte(id)},
		kgo.RecordHeader{Key: "ce_" + IntendedExtension, Value: strconv.AppendInt(nil, intended, 10)})
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.ProduceSync(ctx, &kgo.Record{Topic: s.topic, Key: []byte(id), Value: s.payload, Headers: headers}).FirstErr()
	return err == nil, err
}

// Close flushes nothing and closes the client: sends in flight have ended.
func (s *KafkaSender) Close() { s.client.Close() }
