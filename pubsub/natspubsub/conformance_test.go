package natspubsub_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
)

// TestConformance runs the broker conformance suite on the embedded
// server, and on the external one when FJORD_TEST_NATS is set, with the
// default subscription options and with ResumeFromAckFloor (on the
// embedded server a consumer reset, on an external one older than 2.14
// a consumer created again).
func TestConformance(t *testing.T) {
	for _, resume := range []bool{false, true} {
		name := "default"
		if resume {
			name = "resume"
		}
		t.Run("embedded/"+name, func(t *testing.T) {
			drivertest.Run(t, harness(t, embedded(t).conn(t), resume))
		})
		t.Run("external/"+name, func(t *testing.T) {
			url := os.Getenv(envNATS)
			if url == "" {
				t.Skip(envNATS + " is not set")
			}
			drivertest.Run(t, harness(t, dial(t, url), resume))
		})
	}
}

// harness gives each test a fresh stream, deleted at cleanup, with one
// durable consumer per subscription name. It makes a first request on nc,
// so that the connection's goroutines, the one serving its replies
// included, exist before the suite checks for leaks.
func harness(t *testing.T, nc *nats.Conn, resume bool) drivertest.Harness {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	features := natspubsub.Features
	// A rewind starts delivery counts again at 1.
	features.Deliveries = features.Deliveries && !resume
	return drivertest.Harness{
		Features:            features,
		ReplaysFromAckFloor: resume,
		NewDestination: func(ctx context.Context, t *testing.T, subs []string) (*drivertest.Destination, error) {
			stream, subject := names(t, nc)
			cfg := jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage,
				Duplicates: time.Minute}
			if _, err := js.CreateStream(ctx, cfg); err != nil {
				return nil, err
			}
			for _, name := range subs {
				s, err := natspubsub.OpenSubscription(ctx, nc, subject, name, &natspubsub.SubscriptionOptions{StreamName: stream})
				if err != nil {
					return nil, err
				}
				s.Close() // the durable consumer stays
			}
			return &drivertest.Destination{
				Topic: func(ctx context.Context) (driver.Topic, error) {
					return natspubsub.OpenTopic(ctx, nc, subject, nil)
				},
				Subscription: func(ctx context.Context, name string) (driver.Subscription, error) {
					return natspubsub.OpenSubscription(ctx, nc, subject, name,
						&natspubsub.SubscriptionOptions{StreamName: stream, ResumeFromAckFloor: resume})
				},
			}, nil
		},
	}
}
