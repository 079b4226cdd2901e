package kafkapubsub

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrTopicExists is returned by CreateTopic for a topic that already
// exists.
var ErrTopicExists = errors.New("kafkapubsub: topic already exists")

// TopicConfig says how CreateTopic makes a topic. The zero value makes one
// partition with the brokers' default replication factor.
type TopicConfig struct {
	// Partitions is the number of partitions (0: 1). Messages of one key
	// stay in order within their partition; more partitions let more
	// members of a group consume at once.
	Partitions int32
	// ReplicationFactor is how many brokers keep each partition (0: the
	// brokers' default.replication.factor).
	ReplicationFactor int16
	// Configs are topic configs such as "retention.ms" or
	// "min.insync.replicas".
	Configs map[string]string
}

// CreateTopic creates topic on the cluster client is connected to and
// waits for the controller's answer. It returns an error matching
// ErrTopicExists when the topic is already there.
func CreateTopic(ctx context.Context, client *kgo.Client, topic string, cfg TopicConfig) error {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	rf := cfg.ReplicationFactor
	if rf <= 0 {
		rf = -1
	}
	var configs map[string]*string
	for k, v := range cfg.Configs {
		if configs == nil {
			configs = make(map[string]*string, len(cfg.Configs))
		}
		configs[k] = &v
	}
	resp, err := kadm.NewClient(client).CreateTopic(ctx, cfg.Partitions, rf, configs, topic)
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("kafkapubsub: create topic %q: %w", topic, ErrTopicExists)
	case err != nil:
		if resp.ErrMessage != "" {
			return fmt.Errorf("kafkapubsub: create topic %q: %w (%s)", topic, err, resp.ErrMessage)
		}
		return fmt.Errorf("kafkapubsub: create topic %q: %w", topic, err)
	}
	return nil
}

// DeleteTopic deletes topic and every message in it. Deleting a topic that
// does not exist is not an error.
func DeleteTopic(ctx context.Context, client *kgo.Client, topic string) error {
	_, err := kadm.NewClient(client).DeleteTopic(ctx, topic)
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("kafkapubsub: delete topic %q: %w", topic, err)
	}
	return nil
}
