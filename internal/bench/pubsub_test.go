package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

// TestPubSub runs every pubsub scenario on the in-process broker: each
// times every message once, on a destination of its own that it closes.
func TestPubSub(t *testing.T) {
	b := mempubsub.New(nil)
	var opened, closed []string
	open := func(ctx context.Context, scenario string) (*PubSubDestination, error) {
		opened = append(opened, scenario)
		b.CreateSubscription(scenario, "bench")
		tp, sub := b.Topic(scenario), b.Subscription(scenario, "bench")
		return &PubSubDestination{Topic: tp, Subscription: sub, Close: func() error {
			closed = append(closed, scenario)
			return errors.Join(sub.Close(), tp.Close())
		}}, nil
	}
	var got []string
	results, err := PubSub(t.Context(), open, PubSubConfig{Messages: 200, Rate: 5000, Publishers: 3,
		OnResult: func(r Result) { got = append(got, r.Scenario) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Events != 200 || r.Ops != 200 || r.EventsPerSec <= 0 || r.P99ms < r.P50ms || r.MaxMs < r.P99ms {
			t.Errorf("%s: %+v; want 200 timed messages", r.Scenario, r)
		}
	}
	want := PubSubScenarios()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scenarios reported (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(opened, closed); diff != "" {
		t.Errorf("destinations closed (-opened +closed):\n%s", diff)
	}
	if _, err := PubSub(t.Context(), open, PubSubConfig{Scenarios: []string{"nope"}}); err == nil {
		t.Error("an unknown scenario ran")
	}
}
