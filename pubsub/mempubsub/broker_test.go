package mempubsub_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

func msg(source, id string) *driver.Message {
	return &driver.Message{Attributes: map[string]string{"id": id, "source": source, "type": "t", "specversion": "1.0"}}
}

// TestDedupWindow checks that a (source, id) is dropped within the window
// and accepted again once the window has passed.
func TestDedupWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		b := mempubsub.New(&mempubsub.Options{DedupWindow: time.Minute})
		b.CreateSubscription("t", "s")
		tp := b.Topic("t")
		send := func() {
			if err := tp.Send(ctx, []*driver.Message{msg("/a", "1")}); err != nil {
				t.Fatal(err)
			}
		}
		send()
		time.Sleep(59 * time.Second) // fake time inside the bubble
		send()
		if got := b.Pending("t", "s"); got != 1 {
			t.Fatalf("Pending after a duplicate within the window = %d, want 1", got)
		}
		time.Sleep(2 * time.Second)
		send()
		if got := b.Pending("t", "s"); got != 2 {
			t.Fatalf("Pending after the window = %d, want 2", got)
		}
	})
}

// TestNoDedup checks that a negative window keeps duplicates.
func TestNoDedup(t *testing.T) {
	b := mempubsub.New(&mempubsub.Options{DedupWindow: -1})
	b.CreateSubscription("t", "s")
	m := msg("/a", "1")
	if err := b.Topic("t").Send(t.Context(), []*driver.Message{m, m}); err != nil {
		t.Fatal(err)
	}
	if got := b.Pending("t", "s"); got != 2 {
		t.Fatalf("Pending = %d, want 2", got)
	}
}

// TestBeforeSubscription checks that a message sent before a subscription
// exists is not kept for it, and one sent after is.
func TestBeforeSubscription(t *testing.T) {
	b := mempubsub.New(nil)
	tp := b.Topic("t")
	ctx := t.Context()
	if err := tp.Send(ctx, []*driver.Message{msg("/a", "1")}); err != nil {
		t.Fatal(err)
	}
	sub := b.Subscription("t", "s")
	defer sub.Close()
	if err := tp.Send(ctx, []*driver.Message{msg("/a", "2")}); err != nil {
		t.Fatal(err)
	}
	got, err := sub.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Attributes["id"] != "2" {
		t.Fatalf("received %d messages (first id %q), want only id 2", len(got), got[0].Attributes["id"])
	}
}

// TestForeignAckID checks that an AckID of another subscription is
// refused, and that a stale one (from an earlier delivery) does nothing.
func TestForeignAckID(t *testing.T) {
	b := mempubsub.New(nil)
	b.CreateSubscription("t", "a")
	b.CreateSubscription("t", "b")
	ctx := t.Context()
	if err := b.Topic("t").Send(ctx, []*driver.Message{msg("/a", "1")}); err != nil {
		t.Fatal(err)
	}
	a, bs := b.Subscription("t", "a"), b.Subscription("t", "b")
	defer a.Close()
	defer bs.Close()
	ga, _ := a.Receive(ctx, 1)
	if err := bs.Ack(ctx, []driver.AckID{ga[0].AckID}); !errors.Is(err, mempubsub.ErrForeignAckID) {
		t.Fatalf("Ack with another subscription's ID: %v, want ErrForeignAckID", err)
	}
	if err := bs.Ack(ctx, []driver.AckID{"nonsense"}); !errors.Is(err, mempubsub.ErrForeignAckID) {
		t.Fatalf("Ack with a string ID: %v, want ErrForeignAckID", err)
	}
	if err := a.Nack(ctx, []driver.AckID{ga[0].AckID}); err != nil {
		t.Fatal(err)
	}
	again, _ := a.Receive(ctx, 1)
	if err := a.Ack(ctx, []driver.AckID{ga[0].AckID}); err != nil { // stale: ignored
		t.Fatal(err)
	}
	if got := b.Pending("t", "a"); got != 1 {
		t.Fatalf("Pending after acking a stale ID = %d, want 1", got)
	}
	if err := a.Ack(ctx, []driver.AckID{again[0].AckID}); err != nil {
		t.Fatal(err)
	}
	if got := b.Pending("t", "a"); got != 0 {
		t.Fatalf("Pending after acking = %d, want 0", got)
	}
}

// TestDeleteSubscription checks that a waiting Receive ends with ErrClosed
// when its durable subscription is deleted.
func TestDeleteSubscription(t *testing.T) {
	b := mempubsub.New(nil)
	sub := b.Subscription("t", "s")
	defer sub.Close()
	done := make(chan error, 1)
	go func() {
		_, err := sub.Receive(context.Background(), 1)
		done <- err
	}()
	b.DeleteSubscription("t", "s")
	if err := <-done; !errors.Is(err, mempubsub.ErrClosed) {
		t.Fatalf("Receive on a deleted subscription: %v, want ErrClosed", err)
	}
}
