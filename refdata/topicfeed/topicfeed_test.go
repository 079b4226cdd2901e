package topicfeed_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/bundletest"
	"github.com/fjord-data/fjord/refdata/rollout"
	"github.com/fjord-data/fjord/refdata/topicfeed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	key   = bundletest.Key(1)
	other = bundletest.Key(2)
)

func trusted() []ed25519.PublicKey { return []ed25519.PublicKey{key.Public().(ed25519.PublicKey)} }

// withBlue adds the colour fjordblue to a bundle of colours.
func withBlue(b *refdata.Bundle) {
	bundletest.SetRow(b, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
}

// outcome is what a test checks of a status message.
type outcome struct {
	Type     string
	Instance string
	Applied  bool
	Version  string
	Current  string
	Kept     bool // the origin is a kept bundle
}

// statuses receives n status messages from sub.
func statuses(ctx context.Context, t *testing.T, sub *mempubsub.Subscription, n int) []outcome {
	t.Helper()
	var got []outcome
	for len(got) < n {
		msgs, err := sub.Receive(ctx, n-len(got))
		if err != nil {
			t.Fatalf("receiving status messages (%d of %d so far): %v", len(got), n, err)
		}
		for _, m := range msgs {
			var st struct {
				Instance, Version, Current, Origin string
				Applied                            bool
			}
			if err := json.Unmarshal(m.Data, &st); err != nil {
				t.Fatalf("status %s: %v", m.Data, err)
			}
			if m.Attributes["subject"] != st.Instance {
				t.Errorf("status subject %q, instance %q", m.Attributes["subject"], st.Instance)
			}
			got = append(got, outcome{m.Attributes["type"], st.Instance, st.Applied, st.Version, st.Current, strings.HasPrefix(st.Origin, "kept ")})
			if err := sub.Ack(ctx, []driver.AckID{m.AckID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

// instance runs a watcher over a topicfeed; stop waits until the watcher
// has reported n outcomes (so their bundles are settled), then stops it.
func instance(t *testing.T, b *mempubsub.Broker, reg *refdata.Registry, name, keep string, n int) (stop func()) {
	t.Helper()
	status := pubsub.NewTopic(b.Topic("refdata.status"), nil)
	sub := b.Subscription("refdata.bundles", name)
	feed := topicfeed.New(sub, status, &topicfeed.Options{Topic: "refdata.bundles", Consumer: name, Keep: keep})
	reported := make(chan struct{}, n)
	w := rollout.NewWatcher(reg, []rollout.Feed{feed}, &rollout.WatcherOptions{Trusted: trusted(), Status: feed, Instance: name,
		OnStatus: func(rollout.Status) {
			select {
			case reported <- struct{}{}:
			default: // more than n: the test fails on the statuses it reads
			}
		}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		for range n {
			<-reported
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
		sub.Close()
		status.Close()
	}
}

func TestRollOutOverATopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b := mempubsub.New(nil)
	b.CreateSubscription("refdata.bundles", "svc-1")
	b.CreateSubscription("refdata.status", "ops")
	bundles := pubsub.NewTopic(b.Topic("refdata.bundles"), nil)
	defer bundles.Close()
	reg := refdata.NewRegistry(nil)
	base := reg.Current()

	unsigned, err := bundletest.Next(t, base, "2026.11.26.1", withBlue, refdata.DatasetColours).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topicfeed.Publish(ctx, bundles, unsigned, nil); !errors.Is(err, refdata.ErrUnsigned) {
		t.Errorf("publishing an unsigned bundle: %v, want ErrUnsigned", err)
	}
	if _, err := topicfeed.Publish(ctx, bundles, []byte("junk"), nil); !errors.Is(err, refdata.ErrMalformed) {
		t.Errorf("publishing junk: %v, want ErrMalformed", err)
	}
	good := bundletest.Signed(t, bundletest.Next(t, base, "2026.11.26.3", withBlue, refdata.DatasetColours), key)
	if _, err := topicfeed.Publish(ctx, bundles, good, &topicfeed.Options{MaxBytes: 100}); !errors.Is(err, topicfeed.ErrTooLarge) {
		t.Errorf("publishing over MaxBytes: %v, want ErrTooLarge", err)
	}
	if b.Pending("refdata.bundles", "svc-1") != 0 {
		t.Fatal("a refused bundle was sent")
	}

	// An unsigned bundle and junk sent around Publish, and a bundle
	// signed by an untrusted key, are rejected; a message of another type
	// is skipped; the good bundle is applied. All go in order, on the
	// key Publish uses.
	const key = "refdata-bundles"
	if err := bundles.Publish(ctx,
		&pubsub.Message{ID: "unsigned", Key: key, Source: topicfeed.DefaultSource, Type: topicfeed.TypeBundlePublished, Subject: "2026.11.26.1", Data: unsigned},
		&pubsub.Message{ID: "junk", Key: key, Source: topicfeed.DefaultSource, Type: topicfeed.TypeBundlePublished, Subject: "junk", Data: []byte("junk")},
		&pubsub.Message{ID: "other", Key: key, Source: topicfeed.DefaultSource, Type: "fjord.refdata.bundle.announced", Data: []byte("{}")},
	); err != nil {
		t.Fatal(err)
	}
	if _, err := topicfeed.Publish(ctx, bundles, bundletest.Signed(t, bundletest.Next(t, base, "2026.11.26.2", withBlue, refdata.DatasetColours), other), nil); err != nil {
		t.Fatal(err)
	}
	m, err := topicfeed.Publish(ctx, bundles, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "2026.11.26.3" || m.DataContentType != topicfeed.ContentType {
		t.Errorf("published message: subject %q, content type %q", m.Subject, m.DataContentType)
	}
	if _, err := topicfeed.Publish(ctx, bundles, good, nil); err != nil { // deduplicated by the broker
		t.Fatal(err)
	}

	keep := t.TempDir()
	stop := instance(t, b, reg, "svc-1", keep, 4)
	statusSub := b.Subscription("refdata.status", "ops")
	defer statusSub.Close()
	got := statuses(ctx, t, statusSub, 4)
	stop()
	want := []outcome{
		{topicfeed.TypeBundleRejected, "svc-1", false, "2026.11.26.1", base.Version(), false},
		{topicfeed.TypeBundleRejected, "svc-1", false, "", base.Version(), false},
		{topicfeed.TypeBundleRejected, "svc-1", false, "2026.11.26.2", base.Version(), false},
		{topicfeed.TypeBundleApplied, "svc-1", true, "2026.11.26.3", "2026.11.26.3", false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status messages (-want +got):\n%s", diff)
	}
	if c, err := reg.Current().Colour("fjordblue"); err != nil || c.Hex() != "#1d4e89" {
		t.Errorf("after the good bundle: fjordblue = %v, %v", c, err)
	}
	if n := b.Pending("refdata.bundles", "svc-1"); n != 0 {
		t.Errorf("%d bundle messages left unacknowledged", n)
	}

	// After a restart the topic offers nothing new: the kept bundle
	// brings the registry back to the version it had.
	restarted := refdata.NewRegistry(nil)
	stop = instance(t, b, restarted, "svc-1", keep, 1)
	got = statuses(ctx, t, statusSub, 1)
	stop()
	if diff := cmp.Diff([]outcome{{topicfeed.TypeBundleApplied, "svc-1", true, "2026.11.26.3", "2026.11.26.3", true}}, got); diff != "" {
		t.Errorf("status messages after a restart (-want +got):\n%s", diff)
	}
	if _, err := restarted.Current().Colour("fjordblue"); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}

// The whole built-in data, in one bundle, fits in a message under the
// default limit.
func TestWholeDataFits(t *testing.T) {
	ctx := t.Context()
	b := mempubsub.New(nil)
	b.CreateSubscription("refdata.bundles", "svc-1")
	bundles := pubsub.NewTopic(b.Topic("refdata.bundles"), nil)
	defer bundles.Close()
	all := refdata.NewRegistry(nil).Current().Bundle()
	all.Version = "2999.1.1.1"
	data := bundletest.Signed(t, all, key)
	m, err := topicfeed.Publish(ctx, bundles, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d datasets: %d bytes encoded, %d gzipped (limit %d)", len(all.Tables), len(data), len(m.Data), topicfeed.DefaultMaxBytes)
	if len(m.Data) > topicfeed.DefaultMaxBytes/4 {
		t.Errorf("the whole data gzips to %d bytes: less than a quarter of the %d-byte limit is left to grow", len(m.Data), topicfeed.DefaultMaxBytes)
	}
}

// When the subscription fails, the watcher stops with the feed's error.
func TestSubscriptionFailureStopsTheWatcher(t *testing.T) {
	b := mempubsub.New(nil)
	b.CreateSubscription("refdata.bundles", "svc-1")
	sub := b.Subscription("refdata.bundles", "svc-1")
	sub.Close()
	feed := topicfeed.New(sub, nil, &topicfeed.Options{Topic: "refdata.bundles"})
	w := rollout.NewWatcher(refdata.NewRegistry(nil), []rollout.Feed{feed}, &rollout.WatcherOptions{Trusted: trusted()})
	if err := w.Run(t.Context()); !errors.Is(err, mempubsub.ErrClosed) || !strings.Contains(err.Error(), "refdata.bundles") {
		t.Errorf("Watcher.Run = %v, want the subscription's ErrClosed, naming the topic", err)
	}
}
