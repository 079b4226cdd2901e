package natspubsub_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
)

// TestParkInSameStream parks a poison message on a subject of the stream
// that holds the original, within its duplicate window: the parked copy is
// stored, not dropped by JetStream as a repeat of the original (which the
// Router then acknowledges, so that a drop would lose it). The Router has
// no consumer name: the parked copy differs from the original all the
// same.
func TestParkInSameStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, nc *nats.Conn) {
		stream, subject := names(t, nc)
		parkSubject := subject + ".parked"
		cfg := &jetstream.StreamConfig{Name: stream, Subjects: []string{subject, parkSubject}}
		dt, err := natspubsub.OpenTopic(t.Context(), nc, subject, &natspubsub.TopicOptions{Stream: cfg})
		if err != nil {
			t.Fatal(err)
		}
		topic := pubsub.NewTopic(dt, nil)
		defer topic.Close()
		park, err := natspubsub.OpenTopic(t.Context(), nc, parkSubject, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer park.Close()
		sub, err := natspubsub.OpenSubscription(t.Context(), nc, subject, "billing", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		psub, err := natspubsub.OpenSubscription(t.Context(), nc, parkSubject, "ops", nil)
		if err != nil {
			t.Fatal(err)
		}
		parked := pubsub.NewParked(psub, nil)
		defer parked.Close()

		done := make(chan struct{}, 1)
		r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Topic: subject, Park: park,
			Hooks: pubsub.RouterHooks{OnParked: func(pi pubsub.ParkInfo) {
				if pi.Err == nil {
					done <- struct{}{}
				}
			}}})
		r.Handle("shop.order.placed", func(context.Context, *pubsub.Message) error {
			return pubsub.Permanent(errors.New("undecodable"))
		})
		ctx, cancel := context.WithCancel(t.Context())
		stopped := make(chan error, 1)
		go func() { stopped <- r.Run(ctx) }()
		if err := topic.Publish(t.Context(), &pubsub.Message{ID: "o-1", Source: "/shop", Type: "shop.order.placed"}); err != nil {
			t.Fatal(err)
		}
		<-done
		cancel()
		<-stopped

		var got []string
		for pm, err := range parked.List(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pm.Message.ID)
		}
		if len(got) != 1 || got[0] != "o-1" {
			t.Errorf("parked messages %v, want [o-1]: the parked copy was dropped as a duplicate and the message is lost", got)
		}
	})
}
