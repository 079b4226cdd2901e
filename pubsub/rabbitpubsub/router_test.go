package rabbitpubsub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/google/go-cmp/cmp"
)

// TestWithRouter publishes through pubsub.Topic and consumes with a
// pubsub.Router over RabbitMQ: every message is handled once, each key's
// in the order published, with its CloudEvents attributes intact.
func TestWithRouter(t *testing.T) {
	f := newFixture(t, nil)
	topic := pubsub.NewTopic(f.topic, nil)
	defer topic.Close()

	const perKey = 20
	keys := []string{"order/1", "order/2", "order/3"}
	handled := make(chan *pubsub.Message, perKey*len(keys))
	r := pubsub.NewRouter(f.sub, &pubsub.RouterOptions{Consumer: "test", Topic: f.exchange})
	r.Handle("shop.order.changed", func(ctx context.Context, m *pubsub.Message) error {
		handled <- m
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()

	when := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var msgs []*pubsub.Message
	for i := range perKey {
		for _, k := range keys {
			msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("%s-%d", k, i), Source: "/shop", Type: "shop.order.changed",
				Subject: k, Time: when, DataContentType: "application/json", Data: fmt.Appendf(nil, `{"n":%d}`, i),
				Extensions: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
		}
	}
	if err := topic.Publish(t.Context(), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := make(map[string][]string)
	for range msgs {
		select {
		case m := <-handled:
			got[m.Subject] = append(got[m.Subject], m.ID)
			if !m.Time.Equal(when) || m.DataContentType != "application/json" || m.Extensions["traceparent"] == "" {
				t.Errorf("message %s lost attributes: %+v", m.ID, m)
			}
		case err := <-stopped:
			t.Fatalf("Router stopped: %v", err)
		}
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	want := make(map[string][]string)
	for _, m := range msgs {
		want[m.Subject] = append(want[m.Subject], m.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("handled, by key in order (-published +handled):\n%s", diff)
	}
}
