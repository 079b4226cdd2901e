package replica_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
	"github.com/fjord-data/fjord/replica"
)

var codec = replica.MessageCodec{Source: "/crm/customers", ChangeType: "crm.customer.changed",
	DeleteType: "crm.customer.deleted", SubjectPrefix: "customer/", ContentType: "application/json"}

func TestMessageCodec(t *testing.T) {
	withVersion := func(v string) *pubsub.Message {
		m := codec.Message(replica.Change{Key: "42", Version: 1, Data: []byte("x")})
		m.Extensions[replica.ExtVersion] = v
		return m
	}
	for _, tc := range []struct {
		name    string
		m       *pubsub.Message
		want    replica.Change
		wantErr bool
	}{
		{"change", codec.Message(replica.Change{Key: "42", Version: 1 << 40, Data: []byte(`{"n":1}`), Position: 9}),
			replica.Change{Key: "42", Version: 1 << 40, Data: []byte(`{"n":1}`)}, false},
		{"empty data", codec.Message(replica.Change{Key: "42", Version: 3}), replica.Change{Key: "42", Version: 3, Data: []byte{}}, false},
		{"delete", codec.Message(replica.Change{Key: "7", Version: 2, Deleted: true, Data: []byte("ignored")}),
			replica.Change{Key: "7", Version: 2, Deleted: true}, false},
		{"other type", &pubsub.Message{ID: "1", Source: "s", Type: "crm.customer.merged", Subject: "customer/1", Extensions: map[string]string{"entityversion": "1"}}, replica.Change{}, true},
		{"no prefix", &pubsub.Message{ID: "1", Source: "s", Type: codec.ChangeType, Subject: "order/1", Extensions: map[string]string{"entityversion": "1"}}, replica.Change{}, true},
		{"no key", &pubsub.Message{ID: "1", Source: "s", Type: codec.ChangeType, Subject: "customer/", Extensions: map[string]string{"entityversion": "1"}}, replica.Change{}, true},
		{"no version", &pubsub.Message{ID: "1", Source: "s", Type: codec.ChangeType, Subject: "customer/1"}, replica.Change{}, true},
		{"version zero", withVersion("0"), replica.Change{}, true},
		{"version negative", withVersion("-1"), replica.Change{}, true},
		{"version not a number", withVersion("v2"), replica.Change{}, true},
		{"version too large", withVersion("18446744073709551616"), replica.Change{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Validate(); err != nil {
				t.Fatalf("the codec's message is not valid: %v", err)
			}
			got, err := codec.Change(tc.m)
			if gotErr := err != nil; gotErr != tc.wantErr || (err != nil && !errors.Is(err, replica.ErrNotAChange)) {
				t.Fatalf("Change: error %v, want an error: %v (matching ErrNotAChange)", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Change (-want +got):\n%s", diff)
			}
		})
	}
}

// history is an owner's changes to keys entities: each key is changed
// several times, deleted now and then and recreated after.
func history(keys, perKey int) (changes []replica.Change, live map[string]string) {
	live = map[string]string{}
	for k := range keys {
		key := fmt.Sprint(k)
		for v := 1; v <= perKey; v++ {
			c := replica.Change{Key: key, Version: uint64(v)}
			if (k+v)%4 == 0 {
				c.Deleted = true
				delete(live, key)
			} else {
				c.Data = fmt.Appendf(nil, `{"name":"c%d","v":%d}`, k, v)
				live[key] = string(c.Data)
			}
			changes = append(changes, c)
		}
	}
	return changes, live
}

// TestReplicaFromTopic publishes an owner's history shuffled, every change
// at least once and some three times, and checks that the replica ends
// equal to the owner's state.
func TestReplicaFromTopic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		batch *pubsub.BatchOptions
	}{
		{"one per transaction", nil},
		{"batches", &pubsub.BatchOptions{Size: 16, MaxWait: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sqltest.Each(t, func(t *testing.T, db *sql.DB) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				changes, live := history(40, 6)
				rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
				var msgs []*pubsub.Message
				for _, c := range changes {
					for range 1 + 2*rng.IntN(2) { // duplicates: once or three times
						msgs = append(msgs, codec.Message(c))
					}
				}
				rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })

				b := mempubsub.New(&mempubsub.Options{DedupWindow: -1}) // let the duplicates through
				b.CreateSubscription("customers", "replica")
				r := replica.New(db, "customers", nil, nil)
				if _, err := r.Init(ctx); err != nil {
					t.Fatal(err)
				}
				handled := runRouter(ctx, t, b, len(msgs), func(router *pubsub.Router) { r.Route(router, codec, tc.batch) })
				topic := pubsub.NewTopic(b.Topic("customers"), nil)
				defer topic.Close()
				if err := topic.Publish(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
				handled()

				got := map[string]string{}
				for row, err := range r.All(ctx) {
					if err != nil {
						t.Fatal(err)
					}
					got[row.Key] = string(row.Data)
				}
				if diff := cmp.Diff(live, got); diff != "" {
					t.Errorf("replica vs owner (-owner +replica):\n%s", diff)
				}
				rep, err := r.Reconcile(ctx, ownerSnapshot(changes))
				if err != nil {
					t.Fatal(err)
				}
				if rep.Drift || rep.OwnerRows != len(live) {
					t.Errorf("Reconcile: %+v, want no drift over %d rows", rep, len(live))
				}
			})
		})
	}
}

// ownerSnapshot is the latest change of each key, as a snapshot at
// position 0 (a replica fed by messages has no positions).
func ownerSnapshot(changes []replica.Change) replica.Snapshot {
	latest := map[string]replica.Change{}
	for _, c := range changes {
		if c.Version > latest[c.Key].Version {
			latest[c.Key] = c
		}
	}
	return replica.Snapshot{Rows: func(yield func(replica.Row, error) bool) {
		for _, c := range latest {
			if !yield(replica.Row{Key: c.Key, Version: c.Version, Deleted: c.Deleted, Data: c.Data}, nil) {
				return
			}
		}
	}}
}

// runRouter runs a Router on the broker's "customers"/"replica"
// subscription, with handlers registered by register, until the returned
// func has seen n messages handled; then it stops the Router.
func runRouter(ctx context.Context, t *testing.T, b *mempubsub.Broker, n int, register func(*pubsub.Router)) (wait func()) {
	t.Helper()
	b.CreateSubscription("customers.parked", "ops")
	var count atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	sub := b.Subscription("customers", "replica")
	router := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "replica", Topic: "customers", Park: b.Topic("customers.parked"),
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Hooks: pubsub.RouterHooks{
			OnHandled: func(h pubsub.HandleInfo) {
				if count.Add(int64(len(h.Messages))) >= int64(n) {
					once.Do(func() { close(all) })
				}
			},
			OnParked: func(p pubsub.ParkInfo) { t.Errorf("parked %v: %s", p.Message, p.Reason) },
		}})
	register(router)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(runCtx) }()
	return func() {
		select {
		case <-all:
		case err := <-done:
			t.Fatalf("Router.Run ended before %d messages were handled: %v", n, err)
		}
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Router.Run: %v", err)
		}
		sub.Close()
	}
}

// A message that is not a change is poison, so the Router parks it; in a
// batch, nothing of the batch is applied.
func TestNotAChangeIsPoison(t *testing.T) {
	sqltest.Each(t, func(t *testing.T, db *sql.DB) {
		ctx := context.Background()
		r := replica.New(db, "customers", nil, nil)
		if _, err := r.Init(ctx); err != nil {
			t.Fatal(err)
		}
		good := codec.Message(replica.Change{Key: "1", Version: 1, Data: []byte("a")})
		bad := codec.Message(replica.Change{Key: "2", Version: 1, Data: []byte("b")})
		delete(bad.Extensions, replica.ExtVersion)
		if err := r.MessageHandler(codec)(ctx, bad); !errors.Is(err, pubsub.ErrPoison) || !errors.Is(err, replica.ErrNotAChange) {
			t.Errorf("MessageHandler(bad) = %v, want poison and ErrNotAChange", err)
		}
		if err := r.BatchMessageHandler(codec)(ctx, []*pubsub.Message{good, bad}); !errors.Is(err, pubsub.ErrPoison) {
			t.Errorf("BatchMessageHandler(good, bad) = %v, want poison", err)
		}
		if _, ok, err := r.Get(ctx, "1"); ok || err != nil {
			t.Errorf("after a poison batch, Get(1) = %v, %v; want nothing applied", ok, err)
		}
		if err := r.MessageHandler(codec)(ctx, good); err != nil {
			t.Fatal(err)
		}
		if row, ok, err := r.Get(ctx, "1"); !ok || err != nil || string(row.Data) != "a" {
			t.Errorf("Get(1) = %+v, %v, %v; want version 1 data a", row, ok, err)
		}
	})
}
