package twins

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func init() {
	register("kafka", startKafka)
	register("zookeeper", startZookeeper)
}

// KafkaValues are the kafka chart's values the twin uses.
type KafkaValues struct {
	Brokers    int    `json:"brokers"`
	Partitions int    `json:"partitions"`
	Retention  string `json:"retention"`
}

// kafkaTwin is an embedded Kafka cluster speaking the Kafka protocol on
// loopback (franz-go's kfake). It keeps its log in memory, so retention is
// applied every second: a long run stays flat in memory instead of growing
// by every record sent.
type kafkaTwin struct {
	cluster *kfake.Cluster
	stop    chan struct{}
	done    chan struct{}
}

// retentionEvery is how often the embedded broker drops expired records.
const retentionEvery = time.Second

// segmentBytes is the embedded broker's log segment size: what retention
// frees at a time, per partition.
const segmentBytes = 512 << 10

func startKafka(_ context.Context, _ *Local, rel release, values map[string]any) (Twin, error) {
	var v KafkaValues
	if err := decodeValues(values, &v); err != nil {
		return nil, err
	}
	retention := 20 * time.Second
	if v.Retention != "" {
		var err error
		if retention, err = isoDuration(v.Retention); err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
	}
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(max(1, v.Brokers)),
		kfake.DefaultNumPartitions(max(1, v.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.BrokerConfigs(map[string]string{
			"log.retention.ms":       strconv.FormatInt(retention.Milliseconds(), 10),
			"log.cleaner.backoff.ms": strconv.FormatInt(retentionEvery.Milliseconds(), 10),
			// Retention frees a segment only once all of it expired,
			// and the default segment is 100 MiB per partition: 10 GB
			// over 100 partitions before anything is freed.
			"log.segment.bytes": strconv.Itoa(segmentBytes),
		}),
	)
	if err != nil {
		return nil, err
	}
	k := &kafkaTwin{cluster: cluster, stop: make(chan struct{}), done: make(chan struct{})}
	go k.retain()
	rel.log.Info("kafka listening", "brokers", cluster.ListenAddrs(), "retention", retention)
	return k, nil
}

// retain applies retention every second: the broker's own cleaner only
// covers topics with retention set on the topic itself.
func (k *kafkaTwin) retain() {
	defer close(k.done)
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.cluster.ApplyRetention()
		}
	}
}

func (k *kafkaTwin) addrs() []string { return k.cluster.ListenAddrs() }

func (k *kafkaTwin) Ready(context.Context) error { return nil }

func (k *kafkaTwin) Close(context.Context) error {
	close(k.stop)
	<-k.done
	k.cluster.Close()
	return nil
}

// zookeeper stands for ZooKeeper, which the embedded Kafka does not need:
// it runs nothing and says so.
type zookeeper struct{}

func startZookeeper(_ context.Context, _ *Local, rel release, _ map[string]any) (Twin, error) {
	rel.log.Info("zookeeper not started: the embedded Kafka keeps its metadata itself")
	return zookeeper{}, nil
}

func (zookeeper) Ready(context.Context) error { return nil }
func (zookeeper) Close(context.Context) error { return nil }
