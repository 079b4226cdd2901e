package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
	"github.com/fjord-data/fjord/telemetry"
)

// TestPubSubMetrics publishes three messages: one handled at once, one
// after a retry, one parked as poison; and reads the metrics.
func TestPubSubMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := telemetry.New()
		m, err := telemetry.NewPubSubMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := telemetry.NewPubSubMetrics(reg); err == nil {
			t.Error("registering the pubsub metrics twice succeeded")
		}
		b := mempubsub.New(nil)
		b.CreateSubscription("orders", "billing")
		topic := pubsub.NewTopic(b.Topic("orders"), &pubsub.TopicOptions{Hooks: m.TopicHooks("orders")})
		defer topic.Close()

		hooks := m.RouterHooks("billing")
		parked := make(chan struct{})
		countParked := hooks.OnParked
		hooks.OnParked = func(i pubsub.ParkInfo) { countParked(i); close(parked) }
		handled := make(chan struct{}, 2)
		countHandled := hooks.OnHandled
		hooks.OnHandled = func(i pubsub.HandleInfo) { countHandled(i); handled <- struct{}{} }
		r := pubsub.NewRouter(b.Subscription("orders", "billing"), &pubsub.RouterOptions{
			Consumer: "billing", Topic: "orders", Park: b.Topic("orders.parked"), Hooks: hooks, MinBackoff: time.Millisecond,
		})
		failedOnce := false
		r.Handle("t", func(_ context.Context, msg *pubsub.Message) error {
			switch {
			case msg.ID == "poison":
				return pubsub.Permanent(errors.New("cannot decode"))
			case msg.ID == "flaky" && !failedOnce:
				failedOnce = true
				return errors.New("try again")
			}
			return nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		for _, id := range []string{"ok", "flaky", "poison"} {
			if err := topic.Publish(ctx, &pubsub.Message{ID: id, Source: "/s", Type: "t", Subject: id}); err != nil {
				t.Fatal(err)
			}
		}
		<-parked
		<-handled
		<-handled
		cancel()
		<-done

		rec := httptest.NewRecorder()
		reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		for _, want := range []string{
			`fjord_pubsub_published_messages_total{result="ok",topic="orders"} 3`,
			`fjord_pubsub_handled_messages_total{consumer="billing",result="ok"} 2`,
			`fjord_pubsub_handled_messages_total{consumer="billing",result="retry"} 1`,
			`fjord_pubsub_parked_messages_total{consumer="billing"} 1`,
			`fjord_pubsub_publish_duration_seconds_count{topic="orders"} 3`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}
