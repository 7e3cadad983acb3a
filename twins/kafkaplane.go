package twins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register("kafka-channel", startKafkaChannel)
	register("kafka-broker", startKafkaBroker)
	register("kafka-source", startKafkaSource)
}

// KafkaChannelValues are the kafka-channel chart's values the twin uses.
type KafkaChannelValues struct {
	ChannelValues
	BootstrapServers string `json:"bootstrapServers"`
	Partitions       int32  `json:"partitions"`
	Ordering         string `json:"ordering"`
}

// KafkaBrokerValues are the kafka-broker chart's values the twin uses.
type KafkaBrokerValues struct {
	BrokerValues
	BootstrapServers string `json:"bootstrapServers"`
	Partitions       int32  `json:"partitions"`
	Ordering         string `json:"ordering"`
}

// KafkaSourceValues are the kafka-source chart's values the twin uses.
type KafkaSourceValues struct {
	Name             string   `json:"name"`
	BootstrapServers string   `json:"bootstrapServers"`
	Topics           []string `json:"topics"`
	ConsumerGroup    string   `json:"consumerGroup"`
	Ordering         string   `json:"ordering"`
	Sink             string   `json:"sink"`
	Delivery         Delivery `json:"delivery"`
	Twin             Knobs    `json:"twin"`
}

// kafkaPlane is a data plane over Kafka: an optional HTTP ingress that
// produces each event to a topic and answers once the broker acknowledged
// it, and consumer groups that dispatch the records to subscribers, in
// order per partition or concurrently.
type kafkaPlane struct {
	sink      string // the ingress's sink name; "" without ingress
	host      Host
	ingress   *server
	producer  *kgo.Client
	consumers []*consumer
	disp      *dispatcher
	cancel    context.CancelFunc
}

// consumer is one consumer group delivering to one subscriber.
type consumer struct {
	client   *kgo.Client
	url      string
	filter   func(*event) bool
	ordered  bool
	source   string
	assigned chan struct{}
	once     sync.Once
	done     chan struct{}
}

// route is where a consumer group delivers.
type route struct {
	group  string
	url    string
	filter func(*event) bool
}

func startKafkaChannel(ctx context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v KafkaChannelValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	sinks := sinkResolver{l.host}
	var routes []route
	for _, s := range v.Subscribers {
		u, err := sinks.resolve(s.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("subscriber %s: %w", s.Name, err)
		}
		routes = append(routes, route{group: "kafka." + rel.namespace + "." + v.Name + "." + s.Name, url: u})
	}
	topic := "knative-messaging-kafka." + rel.namespace + "." + v.Name
	return startPlane(ctx, l, rel, planeSpec{
		sink: "channel/" + v.Name, bootstrap: v.BootstrapServers, topics: []string{topic}, create: v.Partitions,
		routes: routes, ordered: v.Ordering != "unordered", knobs: v.Twin, delivery: v.Delivery,
	})
}

func startKafkaBroker(ctx context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v KafkaBrokerValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	sinks := sinkResolver{l.host}
	var routes []route
	for _, t := range v.Triggers {
		u, err := sinks.resolve(t.Subscriber)
		if err != nil {
			return nil, fmt.Errorf("trigger %s: %w", t.Name, err)
		}
		routes = append(routes, route{group: "knative-trigger-" + rel.namespace + "-" + t.Name, url: u, filter: t.matches})
	}
	topic := "knative-broker-" + rel.namespace + "-" + v.Name
	return startPlane(ctx, l, rel, planeSpec{
		sink: "broker/" + v.Name, bootstrap: v.BootstrapServers, topics: []string{topic}, create: v.Partitions,
		routes: routes, ordered: v.Ordering == "ordered", knobs: v.Twin, delivery: v.Delivery,
	})
}

func startKafkaSource(ctx context.Context, l *Local, rel release, values map[string]any) (Twin, error) {
	var v KafkaSourceValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	u, err := sinkResolver{l.host}.resolve(v.Sink)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return startPlane(ctx, l, rel, planeSpec{
		bootstrap: v.BootstrapServers, topics: v.Topics,
		routes:  []route{{group: v.ConsumerGroup, url: u}},
		ordered: v.Ordering != "unordered", knobs: v.Twin, delivery: v.Delivery,
		source: "/apis/v1/namespaces/" + rel.namespace + "/kafkasources/" + v.Name,
	})
}

type planeSpec struct {
	sink      string // "" for no ingress
	bootstrap string
	topics    []string
	create    int32 // partitions of the topic to create; 0: the topic exists
	routes    []route
	ordered   bool
	knobs     Knobs
	delivery  Delivery
	source    string
}

func startPlane(ctx context.Context, l *Local, rel release, spec planeSpec) (_ Twin, err error) {
	addrs, err := l.Bootstrap(spec.bootstrap)
	if err != nil {
		return nil, err
	}
	kn, err := spec.knobs.build()
	if err != nil {
		return nil, err
	}
	del, err := spec.delivery.resolve(sinkResolver{l.host})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p := &kafkaPlane{sink: spec.sink, host: l.host, disp: newDispatcher(runCtx, kn, del, rel.log), cancel: cancel}
	defer func() {
		if err != nil {
			_ = p.Close(context.Background())
		}
	}()
	if spec.create > 0 {
		if err := createTopic(ctx, addrs, spec.topics[0], spec.create, nil); err != nil {
			return nil, err
		}
	}
	for _, r := range spec.routes {
		c, err := newConsumer(addrs, spec.topics, r, spec.ordered, spec.source)
		if err != nil {
			return nil, err
		}
		p.consumers = append(p.consumers, c)
		go c.run(runCtx, p.disp, rel)
	}
	if spec.sink == "" {
		return p, nil
	}
	p.producer, err = kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(spec.topics[0]), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	p.ingress, err = serve(ingress(func(req *http.Request, ev *event) (int, error) {
		if err := p.producer.ProduceSync(req.Context(), ev.record(spec.topics[0])).FirstErr(); err != nil {
			return http.StatusInternalServerError, err
		}
		return http.StatusAccepted, nil
	}))
	if err != nil {
		return nil, err
	}
	l.host.SetSink(spec.sink, p.ingress.url())
	return p, nil
}

// createTopic creates a topic; one that exists already is not an error.
func createTopic(ctx context.Context, addrs []string, topic string, partitions int32, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

func newConsumer(addrs, topics []string, r route, ordered bool, source string) (*consumer, error) {
	c := &consumer{url: r.url, filter: r.filter, ordered: ordered, source: source, assigned: make(chan struct{}), done: make(chan struct{})}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100e6),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			c.once.Do(func() { close(c.assigned) })
		}),
	)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return c, nil
}

// run polls and dispatches until ctx ends: a partition's records one after
// another on the partition's own goroutine when ordered, each on its own
// goroutine otherwise.
func (c *consumer) run(ctx context.Context, d *dispatcher, rel release) {
	defer close(c.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	partitions := map[string]chan *kgo.Record{}
	defer func() {
		for _, ch := range partitions {
			close(ch)
		}
	}()
	handle := func(r *kgo.Record) {
		ev := fromRecord(r, c.source)
		if c.filter != nil && !c.filter(ev) {
			return
		}
		d.handle(ctx, ev, []string{c.url})
	}
	for {
		fetches := c.client.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			rel.log.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if !c.ordered {
				for _, r := range p.Records {
					wg.Add(1)
					go func() {
						defer wg.Done()
						handle(r)
					}()
				}
				return
			}
			k := fmt.Sprintf("%s/%d", p.Topic, p.Partition)
			ch, ok := partitions[k]
			if !ok {
				ch = make(chan *kgo.Record, 4096)
				partitions[k] = ch
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range ch {
						if ctx.Err() == nil {
							handle(r)
						}
					}
				}()
			}
			for _, r := range p.Records {
				select {
				case ch <- r:
				case <-ctx.Done():
					return
				}
			}
		})
	}
}

// Ready waits until every consumer group has its partitions.
func (p *kafkaPlane) Ready(ctx context.Context) error {
	for _, c := range p.consumers {
		select {
		case <-c.assigned:
		case <-ctx.Done():
			return fmt.Errorf("consumer group has no partitions yet: %w", context.Cause(ctx))
		}
	}
	return nil
}

// Close stops the ingress, then the consumers, leaving their groups.
func (p *kafkaPlane) Close(ctx context.Context) error {
	var first error
	if p.sink != "" {
		p.host.RemoveSink(p.sink)
	}
	if p.ingress != nil {
		first = p.ingress.close(ctx)
	}
	if p.producer != nil {
		p.producer.Close()
	}
	p.cancel()
	for _, c := range p.consumers {
		<-c.done
		c.client.Close()
	}
	p.disp.close()
	return first
}
