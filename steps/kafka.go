package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/perfrunner/runner/target"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	Register(Kind{
		Name:      "kafka.topic",
		Doc:       "Creates a Kafka topic through the admin API (deleted in teardown); load steps reach it as kafka/<name>.",
		New:       func() Spec { return new(KafkaTopic) },
		Retryable: true,
		Undo:      undoTopic,
	})
}

// defaultBootstrap is the Kafka chart's service as charts name it.
const defaultBootstrap = "kafka:9092"

// KafkaTopic creates a topic.
type KafkaTopic struct {
	Name              string            `yaml:"name" runner:"required" doc:"the topic's name"`
	Partitions        int32             `yaml:"partitions" doc:"how many partitions (default 100, as in the 2019 report)"`
	ReplicationFactor int16             `yaml:"replicationFactor" doc:"replicas of each partition (default 1)"`
	Configs           map[string]string `yaml:"configs" doc:"topic configs, e.g. retention.ms"`
	BootstrapServers  string            `yaml:"bootstrapServers" doc:"the Kafka brokers as charts name them (default kafka:9092: the release named kafka)"`
}

// Validate checks the counts and the name.
func (k *KafkaTopic) Validate() []FieldError {
	var errs []FieldError
	if k.Name != "" && (!ValidName(k.Name) || len(k.Name) > 249) {
		errs = append(errs, FieldError{Field: "name", Message: "a topic name holds at most 249 letters, digits, '.', '_' and '-'"})
	}
	if k.Partitions < 0 {
		errs = append(errs, FieldError{Field: "partitions", Message: "must be positive"})
	}
	if k.ReplicationFactor < 0 {
		errs = append(errs, FieldError{Field: "replicationFactor", Message: "must be positive"})
	}
	return errs
}

type topicUndo struct {
	Topic     string      `json:"topic"`
	Bootstrap string      `json:"bootstrap"`
	Target    target.Kind `json:"target"`
}

func (k *KafkaTopic) bootstrap() string {
	if k.BootstrapServers == "" {
		return defaultBootstrap
	}
	return k.BootstrapServers
}

// Creates declares the topic, so that teardown deletes it.
func (k *KafkaTopic) Creates(env *Env) ([]Resource, error) {
	undo, err := json.Marshal(topicUndo{Topic: k.Name, Bootstrap: k.bootstrap(), Target: env.Target})
	if err != nil {
		return nil, err
	}
	// The step's own directory names the entry, so that a second step
	// finding the topic made by a first one does not mark the first's
	// entry undone.
	return []Resource{{Kind: "kafka.topic", Name: k.Name + "@" + filepath.Base(env.StepDir), Undo: undo}}, nil
}

// Run creates the topic. One that exists already fails the step: a run
// measures on topics it made itself.
func (k *KafkaTopic) Run(ctx context.Context, env *Env) error {
	t, err := env.Shared.Target()
	if err != nil {
		return err
	}
	adm, done, err := admin(t, k.bootstrap())
	if err != nil {
		return err
	}
	defer done()
	partitions, replicas := k.Partitions, k.ReplicationFactor
	if partitions == 0 {
		partitions = 100
	}
	if replicas == 0 {
		replicas = 1
	}
	configs := map[string]*string{}
	for key, v := range k.Configs {
		configs[key] = &v
	}
	env.Status(fmt.Sprintf("creating topic %s (%d partitions)", k.Name, partitions))
	res, err := adm.CreateTopic(ctx, partitions, replicas, configs, k.Name)
	if err == nil {
		err = res.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if env.Attempt > 1 {
			// An earlier attempt may have created it before its time
			// ran out: the journal holds it already.
			return k.adopt(ctx, adm, partitions)
		}
		return fmt.Errorf("topic %s exists already, and a run measures on topics it made (delete it, or name another): %w", k.Name, ErrNotCreated)
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", k.Name, err)
	}
	env.Log.Info("topic created", "topic", k.Name, "partitions", partitions, "replicas", replicas)
	return nil
}

// adopt accepts a topic an earlier attempt of the step created, when it has
// the partitions asked for.
func (k *KafkaTopic) adopt(ctx context.Context, adm *kadm.Client, partitions int32) error {
	details, err := adm.ListTopics(ctx, k.Name)
	if err != nil {
		return fmt.Errorf("topic %s exists; describing it: %w", k.Name, err)
	}
	d, ok := details[k.Name]
	if !ok || d.Err != nil {
		return fmt.Errorf("topic %s exists but cannot be described: %v", k.Name, d.Err)
	}
	if got := int32(len(d.Partitions)); got != partitions {
		return fmt.Errorf("topic %s exists with %d partitions, not %d", k.Name, got, partitions)
	}
	return nil
}

// admin returns an admin client to the target's Kafka.
func admin(t target.Target, bootstrap string) (*kadm.Client, func(), error) {
	addrs, err := t.Bootstrap(bootstrap)
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// undoTopic deletes a journaled topic. In another process (runner cleanup)
// a local topic has nothing left to remove: the embedded Kafka died with
// the runner.
func undoTopic(ctx context.Context, env *UndoEnv, r Resource) error {
	var u topicUndo
	if err := json.Unmarshal(r.Undo, &u); err != nil {
		return fmt.Errorf("journal entry %s: %w", r.ID(), err)
	}
	t, err := env.systems(u.Target, "topic "+u.Topic)
	if t == nil {
		return err
	}
	adm, done, err := admin(t, u.Bootstrap)
	if errors.Is(err, target.ErrNoKafka) {
		// The Kafka it lived on is gone already (uninstalled first):
		// so is the topic.
		env.Log.Info("topic not deleted: its Kafka is gone", "topic", u.Topic, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting topic %s: %w", u.Topic, err)
	}
	defer done()
	res, err := adm.DeleteTopic(ctx, u.Topic)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("deleting topic %s: %w", u.Topic, err)
	}
	return nil
}
