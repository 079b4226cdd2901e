package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

func newKafkaCmd(a *app) *cobra.Command {
	var brokers string
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Create and delete the Kafka topics that messaging uses",
		Args:  argsBetween(0, 0, ""),
	}
	cmd.PersistentFlags().StringVar(&brokers, "brokers", a.getenv("FJORD_KAFKA"),
		"comma-separated seed brokers, host:port (env FJORD_KAFKA)")
	cmd.AddCommand(newKafkaCreateTopicCmd(a, &brokers), newKafkaDeleteTopicCmd(a, &brokers))
	return cmd
}

func newKafkaCreateTopicCmd(a *app, brokers *string) *cobra.Command {
	var cfg kafkapubsub.TopicConfig
	var configs []string
	cmd := &cobra.Command{
		Use:   "create-topic TOPIC",
		Short: "Create a topic with partitions, a replication factor and topic configs",
		Long: `Create a Kafka topic. Messages of one key stay in order within their
partition; more partitions let more members of a consumer group work at
once. An existing topic is an error.`,
		Example: `  fjord kafka create-topic shop.orders --brokers kafka-1:9092 --partitions 12 \
    --replication-factor 3 --config min.insync.replicas=2 --config retention.ms=604800000`,
		Args: argsBetween(1, 1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Partitions < 1 {
				return usagef(cmd, "invalid --partitions %d: must be at least 1", cfg.Partitions)
			}
			if cfg.ReplicationFactor < -1 || cfg.ReplicationFactor == 0 {
				return usagef(cmd, "invalid --replication-factor %d: must be at least 1 (or -1: the brokers' default)", cfg.ReplicationFactor)
			}
			for _, c := range configs {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return usagef(cmd, "invalid --config %q: want name=value", c)
				}
				if cfg.Configs == nil {
					cfg.Configs = make(map[string]string)
				}
				cfg.Configs[k] = v
			}
			return withKafkaAdmin(cmd, *brokers, func(ctx context.Context, admin *kgo.Client) error {
				if err := kafkapubsub.CreateTopic(ctx, admin, args[0], cfg); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "created topic %q with %d partitions\n", args[0], cfg.Partitions)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.Int32Var(&cfg.Partitions, "partitions", 1, "number of partitions")
	fl.Int16Var(&cfg.ReplicationFactor, "replication-factor", -1, "brokers that keep each partition (-1: the brokers' default)")
	fl.StringArrayVar(&configs, "config", nil, "topic config name=value (repeatable)")
	return cmd
}

func newKafkaDeleteTopicCmd(a *app, brokers *string) *cobra.Command {
	return &cobra.Command{
		Use:     "delete-topic TOPIC",
		Short:   "Delete a topic and every message in it (a missing topic is not an error)",
		Example: `  fjord kafka delete-topic shop.orders --brokers kafka-1:9092`,
		Args:    argsBetween(1, 1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKafkaAdmin(cmd, *brokers, func(ctx context.Context, admin *kgo.Client) error {
				if err := kafkapubsub.DeleteTopic(ctx, admin, args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "deleted topic %q\n", args[0])
				return err
			})
		},
	}
}

// withKafkaAdmin runs fn with a client of brokers, closed afterwards.
func withKafkaAdmin(cmd *cobra.Command, brokers string, fn func(context.Context, *kgo.Client) error) error {
	var seeds []string
	for s := range strings.SplitSeq(brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return usagef(cmd, "missing --brokers (or FJORD_KAFKA)")
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer admin.Close()
	return fn(cmd.Context(), admin)
}
