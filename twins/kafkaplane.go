package twins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/perfrunner/runner/target"
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
	url       string // the ingress's URL, once the sink is claimed
	host      target.Host
	ingress   *server
	producer  *kgo.Client
	consumers []*consumer
	cancel    context.CancelFunc
}

// consumer is one consumer group delivering to one subscriber, as Knative
// runs one per subscription or trigger: the twin's knobs apply to each
// group on its own (its own capacity, its own exact loss and duplicates).
type consumer struct {
	client   *kgo.Client
	group    string
	topics   []string
	url      string
	filter   func(*event) bool
	ordered  bool
	source   string
	disp     *dispatcher
	slots    chan struct{} // bounds the records in hand to the backlog
	inflight atomic.Int64
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
		sink: target.SinkName(target.SinkChannel, v.Name), bootstrap: v.BootstrapServers, topics: []string{topic}, create: v.Partitions,
		// Knative's KafkaChannel delivers each subscription's events in
		// order, one at a time per partition.
		routes: routes, ordered: true, knobs: v.Twin, delivery: v.Delivery,
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
		sink: target.SinkName(target.SinkBroker, v.Name), bootstrap: v.BootstrapServers, topics: []string{topic}, create: v.Partitions,
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
	if _, err := spec.knobs.build(); err != nil {
		return nil, err
	}
	del, err := spec.delivery.resolve(sinkResolver{l.host})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p := &kafkaPlane{sink: spec.sink, host: l.host, cancel: cancel}
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
		kn, err := spec.knobs.build() // each group its own knobs
		if err != nil {
			return nil, err
		}
		c, err := newConsumer(addrs, spec.topics, r, spec.ordered, spec.source)
		if err != nil {
			return nil, err
		}
		c.disp = newDispatcher(runCtx, kn, del, rel.log)
		c.slots = make(chan struct{}, kn.backlog)
		p.consumers = append(p.consumers, c)
		go c.run(runCtx, rel)
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
	url := p.ingress.url()
	if err := l.host.ClaimSink(spec.sink, url); err != nil {
		return nil, err
	}
	p.url = url
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
	c := &consumer{group: r.group, topics: topics, url: r.url, filter: r.filter, ordered: ordered, source: source, assigned: make(chan struct{}), done: make(chan struct{})}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100e6),
		// Called on every rebalance, even one that assigns nothing (a
		// topic that does not exist yet): ready means partitions.
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			for _, ps := range assigned {
				if len(ps) > 0 {
					c.once.Do(func() { close(c.assigned) })
					return
				}
			}
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
// goroutine otherwise. At most backlog records are in hand at once; the
// rest wait in Kafka, as a consumer's lag.
func (c *consumer) run(ctx context.Context, rel release) {
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
		defer func() { <-c.slots; c.inflight.Add(-1) }()
		ev := fromRecord(r, c.source)
		if c.filter != nil && !c.filter(ev) {
			return
		}
		c.disp.handle(ctx, ev, []string{c.url})
	}
	take := func() bool {
		select {
		case c.slots <- struct{}{}:
			c.inflight.Add(1)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		fetches := c.client.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			rel.log.Warn("fetch failed", "group", c.group, "topic", topic, "partition", p, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			var ch chan *kgo.Record
			if c.ordered {
				k := fmt.Sprintf("%s/%d", p.Topic, p.Partition)
				if ch = partitions[k]; ch == nil {
					ch = make(chan *kgo.Record, cap(c.slots))
					partitions[k] = ch
					wg.Add(1)
					go func() {
						defer wg.Done()
						for r := range ch {
							handle(r)
						}
					}()
				}
			}
			for _, r := range p.Records {
				if !take() {
					return
				}
				if ch != nil {
					ch <- r // never blocks: a slot is held for it
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					handle(r)
				}()
			}
		})
	}
}

// Ready waits until every consumer group has partitions.
func (p *kafkaPlane) Ready(ctx context.Context) error {
	for _, c := range p.consumers {
		select {
		case <-c.assigned:
		case <-ctx.Done():
			return fmt.Errorf("consumer group %s has no partitions of %s yet (does the topic exist?): %w", c.group, strings.Join(c.topics, ", "), context.Cause(ctx))
		}
	}
	return nil
}

// Close stops the ingress, lets the records in hand be delivered until ctx
// ends, then stops the consumers, leaving their groups.
func (p *kafkaPlane) Close(ctx context.Context) error {
	var first error
	if p.url != "" {
		p.host.ReleaseSink(p.sink, p.url)
	}
	if p.ingress != nil {
		first = p.ingress.close(ctx)
	}
	if p.producer != nil {
		p.producer.Close()
	}
	waitIdle(ctx, func() bool {
		for _, c := range p.consumers {
			if c.inflight.Load() > 0 {
				return false
			}
		}
		return true
	})
	p.cancel()
	for _, c := range p.consumers {
		<-c.done
		if err := c.client.LeaveGroupContext(ctx); err != nil && first == nil && ctx.Err() == nil {
			first = fmt.Errorf("consumer group %s: %w", c.group, err)
		}
		c.client.Close()
		c.disp.close()
	}
	return first
}
