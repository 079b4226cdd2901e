package eventfeed_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/eventfeed"
	"github.com/fjord-data/fjord/refdata/rollout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func bundle(t *testing.T, base *refdata.Snapshot, v string, key ed25519.PrivateKey) []byte {
	t.Helper()
	full := base.Bundle()
	b := &refdata.Bundle{Version: v, Created: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	for _, tb := range full.Tables {
		if tb.Name == refdata.DatasetColours {
			tb.Version = v
			tb.Rows = append(tb.Rows, []string{"fjordblue", "#1d4e89"})
			b.Tables = append(b.Tables, tb)
		}
	}
	b.Normalize()
	if key != nil {
		if err := rollout.Sign(b, key); err != nil {
			t.Fatal(err)
		}
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRollOutOverTheStore(t *testing.T) {
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	feed := eventfeed.New(store, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reg := refdata.NewRegistry(nil)
	base := reg.Current()

	if _, err := feed.Publish(ctx, bundle(t, base, "2026.11.26.1", nil)); !errors.Is(err, refdata.ErrUnsigned) {
		t.Errorf("publishing an unsigned bundle: %v", err)
	}
	if _, err := feed.Publish(ctx, []byte("junk")); !errors.Is(err, refdata.ErrMalformed) {
		t.Errorf("publishing junk: %v", err)
	}
	if _, err := feed.Publish(ctx, bundle(t, base, "2026.11.26.1", other)); err != nil {
		t.Fatal(err)
	}
	good := bundle(t, base, "2026.11.26.2", key)
	first, err := feed.Publish(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	again, err := feed.Publish(ctx, good)
	if err != nil || !again.Duplicate || again.Version != first.Version {
		t.Errorf("publishing twice: %+v, %v; want a duplicate of %+v", again, err, first)
	}

	w := rollout.NewWatcher(reg, []rollout.Feed{feed}, &rollout.WatcherOptions{
		Trusted: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, Status: feed, Instance: "svc-1"})
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	type outcome struct {
		Type    string
		Applied bool
		Version string
		Current string
	}
	var got []outcome
	for d, err := range store.Subscribe(ctx, eventstore.SubscribeOptions{Stream: eventfeed.DefaultStatusStream}) {
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != eventstore.DeliveredEvent {
			continue
		}
		var st struct {
			Applied          bool
			Version, Current string
			Instance         string
		}
		if err := json.Unmarshal(d.Event.Data, &st); err != nil || st.Instance != "svc-1" {
			t.Fatalf("status %s: %v", d.Event.Data, err)
		}
		got = append(got, outcome{d.Event.Type, st.Applied, st.Version, st.Current})
		if len(got) == 2 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []outcome{
		{eventfeed.EventBundleRejected, false, "2026.11.26.1", base.Version()},
		{eventfeed.EventBundleApplied, true, "2026.11.26.2", "2026.11.26.2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("status stream (-want +got):\n%s", d)
	}
	if _, err := reg.Current().Colour("fjordblue"); err != nil {
		t.Error(err)
	}
}
