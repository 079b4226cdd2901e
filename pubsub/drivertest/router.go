package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/pubsub"
)

// testRouter runs the driver end to end under package pubsub: a Topic
// publishes messages of several keys in one call and a Router handles
// them; every CloudEvents attribute survives, and, where the broker keeps
// per-key order, each key is handled in publish order.
func (s *suite) testRouter(t *testing.T) {
	e := s.newEnv(t, "router")
	topic := pubsub.NewTopic(e.topic(), nil)
	defer topic.Close()

	const perKey = 20
	keys := []string{"order/1", "order/2", "order/3"}
	handled := make(chan *pubsub.Message, perKey*len(keys))
	r := pubsub.NewRouter(e.sub("router"), &pubsub.RouterOptions{Consumer: "test", Topic: "drivertest"})
	r.Handle("shop.order.changed", func(ctx context.Context, m *pubsub.Message) error {
		handled <- m
		return nil
	})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- r.Run(ctx) }()

	when := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var msgs []*pubsub.Message
	for i := range perKey {
		for _, k := range keys {
			msgs = append(msgs, &pubsub.Message{ID: fmt.Sprintf("%s-%d", k, i), Source: "/drivertest", Type: "shop.order.changed",
				Subject: k, Time: when, DataContentType: "application/json", Data: fmt.Appendf(nil, `{"n":%d}`, i),
				Extensions: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
		}
	}
	if err := topic.Publish(e.ctx, msgs...); err != nil {
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
		case <-e.ctx.Done():
			t.Fatalf("handled %d of %d messages before the subtest's timeout", len(got), len(msgs))
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
	if !s.h.Features.OrderedKeys {
		for k := range got {
			slices.Sort(got[k])
			slices.Sort(want[k])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("handled, by key (-published +handled):\n%s", diff)
	}
}
