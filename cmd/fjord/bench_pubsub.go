package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/internal/bench"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

func newBenchPubSubCmd(a *app) *cobra.Command {
	var (
		cfg        bench.PubSubConfig
		url        string
		dir        string
		cpuProfile string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Benchmark messaging over NATS JetStream",
		Long: `Run messaging scenarios over NATS JetStream, each on a fresh stream
(file storage, one replica) with one durable consumer, deleted afterwards,
and print one result per scenario (--json: one JSON object per line).
Messages go through pubsub.Topic and are handled by a pubsub.Router.

  publish   Publish calls of one message each from --publishers
            goroutines, each awaiting JetStream's ack: throughput and
            Publish latency
  e2e-rate  one publisher at --rate messages/s and a Router: latency from
            each message's scheduled send time to its handler
  e2e-max   --publishers at full speed and a Router: throughput and
            latency from the start of each Publish to its handler

By default the broker is an embedded NATS server with its store in a new
temporary directory (under --dir), removed afterwards; --nats URL uses an
external server. --data is not used.`,
		Example: `  fjord bench pubsub --json
  fjord bench pubsub --scenario e2e-rate --rate 1000 --messages 10000
  fjord bench pubsub --nats nats://127.0.0.1:4222`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range cfg.Scenarios {
				if !strings.Contains(" "+strings.Join(bench.PubSubScenarios(), " ")+" ", " "+name+" ") {
					return usagef(cmd, "invalid --scenario %q: known scenarios are %s", name, strings.Join(bench.PubSubScenarios(), ", "))
				}
			}
			if err := checkCounts(cmd, countFlag{"messages", cfg.Messages}, countFlag{"size", cfg.Size},
				countFlag{"rate", cfg.Rate}, countFlag{"publishers", cfg.Publishers}); err != nil {
				return err
			}
			var printErr error
			cfg.OnResult = benchResultPrinter(a, asJSON, &printErr)
			if cpuProfile != "" {
				out, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("bench pubsub: %w", err)
				}
				defer out.Close()
				if err := pprof.StartCPUProfile(out); err != nil {
					return fmt.Errorf("bench pubsub: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if err := benchPubSub(cmd.Context(), url, dir, cfg); err != nil {
				return fmt.Errorf("bench pubsub: %w", err)
			}
			return printErr
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&cfg.Scenarios, "scenario", nil, "scenario to run (repeatable; default all)")
	fl.IntVar(&cfg.Messages, "messages", 0, "messages per scenario (default: publish 20000, e2e-rate 5000, e2e-max 20000)")
	fl.IntVar(&cfg.Size, "size", 256, "bytes of data per message")
	fl.IntVar(&cfg.Rate, "rate", 1000, "e2e-rate's publish rate, messages per second")
	fl.IntVar(&cfg.Publishers, "publishers", 16, "publishing goroutines in publish and e2e-max")
	fl.StringVar(&url, "nats", "", "external NATS server URL (default: an embedded server)")
	fl.StringVar(&dir, "dir", "", "put the embedded server's temporary store here (default: the system's temporary directory)")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per scenario and line")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

// benchPubSub runs the scenarios of cfg on the NATS server at url, or on
// an embedded one with its store in a temporary directory under dir.
func benchPubSub(ctx context.Context, url, dir string, cfg bench.PubSubConfig) error {
	return withBenchNATS(ctx, url, dir, func(open bench.OpenPubSub) error {
		_, err := bench.PubSub(ctx, open, cfg)
		return err
	})
}

// benchServer is an embedded server whose store is in a temporary
// directory that Close removes.
type benchServer struct {
	*natsembed.Server
	dir string
}

func startBenchServer(ctx context.Context, dir string) (*benchServer, error) {
	tmp, err := os.MkdirTemp(dir, "fjord-bench-nats-")
	if err != nil {
		return nil, err
	}
	srv, err := natsembed.Start(ctx, &natsembed.Options{Dir: tmp})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(tmp))
	}
	return &benchServer{srv, tmp}, nil
}

func (s *benchServer) Close() error {
	return errors.Join(s.Server.Close(), os.RemoveAll(s.dir))
}

// openBenchDestination creates a stream and a durable consumer unique to
// one scenario run. Close closes the topic and the subscription and hands
// the stream's deletion to later: deleting a server's last stream and
// creating the next at once races in nats-server (the account's store
// directory is removed under the new stream), so the streams are deleted
// together when the bench ends.
func openBenchDestination(ctx context.Context, nc *nats.Conn, scenario string, later func(func() error)) (*bench.PubSubDestination, error) {
	suffix := randomSuffix()
	stream, subject := "FJORD_BENCH_"+strings.ToUpper(suffix), "fjord.bench."+suffix
	topic, err := natspubsub.OpenTopic(ctx, nc, subject, &natspubsub.TopicOptions{Stream: &jetstream.StreamConfig{
		Name: stream, Storage: jetstream.FileStorage, Replicas: 1, MaxAge: time.Hour}})
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, errors.Join(err, topic.Close())
	}
	deleteStream := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return js.DeleteStream(ctx, stream)
	}
	sub, err := natspubsub.OpenSubscription(ctx, nc, subject, "bench", &natspubsub.SubscriptionOptions{MaxAckPending: 10_000})
	if err != nil {
		return nil, errors.Join(err, topic.Close(), deleteStream())
	}
	later(deleteStream)
	return &bench.PubSubDestination{Topic: topic, Subscription: sub, Close: func() error {
		return errors.Join(sub.Close(), topic.Close())
	}}, nil
}

func randomSuffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}
