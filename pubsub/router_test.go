package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

// fixture is a broker with an "orders" topic consumed by "billing", and a
// "parked" topic kept by the "ops" subscription.
type fixture struct {
	t      *testing.T
	b      *mempubsub.Broker
	topic  *pubsub.Topic
	parkTo *mempubsub.Topic
}

func newFixture(t *testing.T) *fixture {
	b := mempubsub.New(nil)
	b.CreateSubscription("orders", "billing")
	b.CreateSubscription("parked", "ops")
	f := &fixture{t: t, b: b, topic: pubsub.NewTopic(b.Topic("orders"), nil), parkTo: b.Topic("parked")}
	t.Cleanup(func() { f.topic.Close() })
	return f
}

// router returns a Router on orders/billing that parks to "parked", with
// o's other options.
func (f *fixture) router(o pubsub.RouterOptions) *pubsub.Router {
	sub := f.b.Subscription("orders", "billing")
	f.t.Cleanup(func() { sub.Close() })
	o.Park = f.parkTo
	o.Topic, o.Consumer = "orders", "billing"
	return pubsub.NewRouter(sub, &o)
}

func (f *fixture) publish(msgs ...*pubsub.Message) {
	f.t.Helper()
	if err := f.topic.Publish(f.t.Context(), msgs...); err != nil {
		f.t.Fatalf("Publish: %v", err)
	}
}

// run runs r until the returned stop is called; stop returns Run's error.
func run(t *testing.T, r *pubsub.Router) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// parked lists the parked messages (and releases them).
func (f *fixture) parked() []*pubsub.ParkedMessage {
	f.t.Helper()
	p := pubsub.NewParked(f.b.Subscription("parked", "ops"), &pubsub.ParkedOptions{IdleWait: time.Second})
	defer p.Close()
	var out []*pubsub.ParkedMessage
	for pm, err := range p.List(f.t.Context()) {
		if err != nil {
			f.t.Fatalf("List: %v", err)
		}
		out = append(out, pm)
	}
	return out
}

// consume runs a Router that handles messages of type typ until it has
// handled n, and returns their IDs in the order handled.
func (f *fixture) consume(typ string, n int) []string {
	var mu sync.Mutex
	var ids []string
	c := newCounter(n)
	r := f.router(pubsub.RouterOptions{})
	r.Handle(typ, func(_ context.Context, m *pubsub.Message) error {
		mu.Lock()
		ids = append(ids, m.ID)
		mu.Unlock()
		c.add(1)
		return nil
	})
	stop := run(f.t, r)
	<-c.done
	stop()
	return ids
}

// counter signals done once it has been called n times.
type counter struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newCounter(n int) *counter { return &counter{n: n, done: make(chan struct{})} }

func (c *counter) add(k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n -= k
	if c.n == 0 {
		close(c.done)
	}
}

// TestRouterPerKeyOrder handles many interleaved keys with several workers
// while handlers fail now and then: each key's messages succeed in the
// order published, every message exactly once.
func TestRouterPerKeyOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		const keys, perKey = 12, 20
		var (
			mu       sync.Mutex
			handled  = map[string][]int{}
			attempts = map[string]int{}
			running  = map[string]bool{}
		)
		c := newCounter(keys * perKey)
		r := f.router(pubsub.RouterOptions{Concurrency: 4, MaxAttempts: 10, MaxInFlight: 50})
		r.Handle("order.placed", func(ctx context.Context, m *pubsub.Message) error {
			mu.Lock()
			if running[m.Key] {
				mu.Unlock()
				t.Errorf("key %s handled by two workers at once", m.Key)
				return nil
			}
			running[m.Key] = true
			attempts[m.ID]++
			n := attempts[m.ID]
			mu.Unlock()
			time.Sleep(time.Millisecond) // fake time: lets other keys interleave
			mu.Lock()
			defer mu.Unlock()
			running[m.Key] = false
			var seq int
			fmt.Sscanf(m.ID[strings.LastIndex(m.ID, "-")+1:], "%d", &seq)
			// key-3 fails twice on every message; every 7th message once.
			if (m.Key == "key-3" && n <= 2) || (seq%7 == 0 && n == 1) {
				return fmt.Errorf("transient failure %d of %s", n, m.ID)
			}
			handled[m.Key] = append(handled[m.Key], seq)
			c.add(1)
			return nil
		})
		stop := run(t, r)
		for i := range perKey {
			var batch []*pubsub.Message
			for k := range keys {
				batch = append(batch, event("order.placed", fmt.Sprintf("key-%d", k), i))
			}
			f.publish(batch...)
		}
		<-c.done
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		want := make([]int, perKey)
		for i := range want {
			want[i] = i
		}
		for k := range keys {
			key := fmt.Sprintf("key-%d", k)
			if diff := cmp.Diff(want, handled[key]); diff != "" {
				t.Errorf("key %s handled out of order (-want +got):\n%s", key, diff)
			}
		}
		if n := f.b.Pending("orders", "billing"); n != 0 {
			t.Errorf("%d messages left unacknowledged", n)
		}
		if got := f.parked(); len(got) != 0 {
			t.Errorf("%d messages parked, want none", len(got))
		}
	})
}

// TestRouterFailingKeyDoesNotBlockOthers checks that a key whose handler
// keeps failing (in backoff) holds back only its own messages.
func TestRouterFailingKeyDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newCounter(20)
		release := make(chan struct{})
		r := f.router(pubsub.RouterOptions{Concurrency: 1, MaxAttempts: 1000, MinBackoff: time.Hour, MaxBackoff: time.Hour})
		var bad []string
		r.Handle("t", func(ctx context.Context, m *pubsub.Message) error {
			if m.Key == "bad" {
				select {
				case <-release:
					bad = append(bad, m.ID)
					c.add(1)
					return nil
				default:
					return errors.New("not yet")
				}
			}
			c.add(1)
			return nil
		})
		stop := run(t, r)
		f.publish(event("t", "bad", 1), event("t", "bad", 2))
		for i := range 18 {
			f.publish(event("t", fmt.Sprint("good", i), i))
		}
		synctest.Wait() // the 18 good ones are handled while bad-1 waits an hour
		close(release)
		<-c.done
		stop()
		if diff := cmp.Diff([]string{"bad-1", "bad-2"}, bad); diff != "" {
			t.Errorf("bad key (-want +got):\n%s", diff)
		}
	})
}

// TestRouterParks checks every reason to park: attempts exhausted, a
// panic, a timeout, poison, an invalid CloudEvent and no handler. The
// parked copy carries the reason, attempts, destination, consumer and
// failure times, and the original is acknowledged.
func TestRouterParks(t *testing.T) {
	tests := []struct {
		name         string
		handler      pubsub.Handler
		raw          bool // publish a message that is not a valid CloudEvent
		typ          string
		wantReason   []string
		wantAttempts int
	}{
		{"attempts exhausted", func(context.Context, *pubsub.Message) error { return errors.New("db down") },
			false, "t", []string{"failed 3 attempts: db down"}, 3},
		{"panic", func(context.Context, *pubsub.Message) error { panic("kaboom") },
			false, "t", []string{"failed 3 attempts: pubsub: handler panicked: kaboom at ", "router_test.go"}, 3},
		{"timeout", func(ctx context.Context, _ *pubsub.Message) error { <-ctx.Done(); return ctx.Err() },
			false, "t", []string{"failed 3 attempts: context deadline exceeded"}, 3},
		{"poison", func(context.Context, *pubsub.Message) error { return pubsub.Permanent(errors.New("bad json")) },
			false, "t", []string{"poison: permanent: bad json"}, 1},
		{"invalid CloudEvent", nil, true, "t", []string{`not a valid CloudEvent: pubsub: invalid message: attribute "specversion" is "0.3", want "1.0"`}, 0},
		{"no handler", nil, false, "other", []string{`no handler for type "other"`}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				var mu sync.Mutex
				var parked []pubsub.ParkInfo
				var retries int
				c := newCounter(1)
				r := f.router(pubsub.RouterOptions{MaxAttempts: 3, HandlerTimeout: time.Second,
					Hooks: pubsub.RouterHooks{
						OnParked: func(i pubsub.ParkInfo) { mu.Lock(); parked = append(parked, i); mu.Unlock(); c.add(1) },
						OnRetry:  func(pubsub.HandleInfo) { mu.Lock(); retries++; mu.Unlock() },
					}})
				if tc.handler != nil {
					r.Handle("t", tc.handler)
				}
				stop := run(t, r)
				start := time.Now()
				if tc.raw {
					raw := &driver.Message{Attributes: map[string]string{"id": "x-1", "source": "/test", "type": "t", "specversion": "0.3"}, Key: "x", Data: []byte("?")}
					if err := f.b.Topic("orders").Send(t.Context(), []*driver.Message{raw}); err != nil {
						t.Fatal(err)
					}
				} else {
					f.publish(event(tc.typ, "x", 1))
				}
				<-c.done
				stop()
				if n := f.b.Pending("orders", "billing"); n != 0 {
					t.Errorf("%d messages left unacknowledged after parking", n)
				}
				if want := max(tc.wantAttempts-1, 0); retries != want {
					t.Errorf("OnRetry called %d times, want %d", retries, want)
				}
				pms := f.parked()
				if len(pms) != 1 {
					t.Fatalf("%d parked messages, want 1", len(pms))
				}
				pm := pms[0]
				for _, w := range tc.wantReason {
					if !strings.Contains(pm.Reason, w) {
						t.Errorf("reason %q does not contain %q", pm.Reason, w)
					}
				}
				if pm.Reason != parked[0].Reason {
					t.Errorf("parked reason %q, OnParked reason %q", pm.Reason, parked[0].Reason)
				}
				if pm.Attempts != tc.wantAttempts || pm.Topic != "orders" || pm.Consumer != "billing" {
					t.Errorf("parked attempts %d, topic %q, consumer %q; want %d, orders, billing", pm.Attempts, pm.Topic, pm.Consumer, tc.wantAttempts)
				}
				if tc.wantAttempts > 0 {
					if pm.FirstFailure.Before(start) || pm.LastFailure.Before(pm.FirstFailure) {
						t.Errorf("failure times %v, %v (started %v)", pm.FirstFailure, pm.LastFailure, start)
					}
				} else if !pm.FirstFailure.IsZero() {
					t.Errorf("first failure %v for a message never handled", pm.FirstFailure)
				}
				if (pm.Message == nil) != tc.raw || (pm.Invalid != nil) != tc.raw {
					t.Errorf("parked Message %v, Invalid %v; want a message unless invalid", pm.Message, pm.Invalid)
				}
				if _, ok := pm.Original.Attributes[pubsub.ExtParkReason]; ok {
					t.Errorf("Original still carries %s", pubsub.ExtParkReason)
				}
			})
		})
	}
}

// TestRouterUnhandled checks the policies for messages without a handler.
func TestRouterUnhandled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newCounter(2)
		var unhandled []string
		r := f.router(pubsub.RouterOptions{Unhandled: pubsub.AckUnhandled,
			Hooks: pubsub.RouterHooks{OnUnhandled: func(m *pubsub.Message) { unhandled = append(unhandled, m.ID); c.add(1) }}})
		stop := run(t, r)
		f.publish(event("a", "k", 1), event("b", "k", 2))
		<-c.done
		stop()
		if diff := cmp.Diff([]string{"k-1", "k-2"}, unhandled); diff != "" {
			t.Errorf("unhandled (-want +got):\n%s", diff)
		}
		if n := f.b.Pending("orders", "billing"); n != 0 {
			t.Errorf("%d messages left unacknowledged", n)
		}
		if got := f.parked(); len(got) != 0 {
			t.Errorf("%d parked, want none", len(got))
		}

		// A default handler takes every type without its own.
		c = newCounter(2)
		var types []string
		r = f.router(pubsub.RouterOptions{})
		r.Handle("a", func(context.Context, *pubsub.Message) error { types = append(types, "a:own"); c.add(1); return nil })
		r.HandleDefault(func(_ context.Context, m *pubsub.Message) error {
			types = append(types, m.Type+":default")
			c.add(1)
			return nil
		})
		stop = run(t, r)
		f.publish(event("a", "k", 3), event("b", "k", 4))
		<-c.done
		stop()
		if diff := cmp.Diff([]string{"a:own", "b:default"}, types); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
	})
}

// TestRouterBatch checks a batch handler: batches up to Size, a partial one
// after MaxWait, each key in order across batches, and a failed batch
// retried as a whole.
func TestRouterBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newCounter(12)
		var batches [][]string
		failed := false
		r := f.router(pubsub.RouterOptions{Concurrency: 2})
		var mu sync.Mutex
		r.HandleBatch("t", func(ctx context.Context, msgs []*pubsub.Message) error {
			mu.Lock()
			defer mu.Unlock()
			var ids []string
			for _, m := range msgs {
				ids = append(ids, m.ID)
			}
			if !failed {
				failed = true
				return errors.New("first batch fails once")
			}
			batches = append(batches, ids)
			c.add(len(msgs))
			return nil
		}, &pubsub.BatchOptions{Size: 5, MaxWait: time.Second})
		stop := run(t, r)
		var msgs []*pubsub.Message
		for i := range 12 {
			msgs = append(msgs, event("t", fmt.Sprint("k", i%3), i))
		}
		f.publish(msgs...)
		<-c.done
		stop()
		var all []string
		perKey := map[string][]string{}
		for _, b := range batches {
			if len(b) > 5 {
				t.Errorf("batch of %d exceeds Size 5: %v", len(b), b)
			}
			for _, id := range b {
				all = append(all, id)
				k := id[:strings.Index(id, "-")]
				perKey[k] = append(perKey[k], id)
			}
		}
		if len(all) != 12 {
			t.Fatalf("handled %d messages in batches %v, want 12", len(all), batches)
		}
		for k, ids := range perKey {
			sorted := slices.SortedFunc(slices.Values(ids), func(a, b string) int {
				var x, y int
				fmt.Sscanf(a[strings.Index(a, "-")+1:], "%d", &x)
				fmt.Sscanf(b[strings.Index(b, "-")+1:], "%d", &y)
				return x - y
			})
			if diff := cmp.Diff(sorted, ids); diff != "" {
				t.Errorf("key %s out of order across batches (-want +got):\n%s", k, diff)
			}
		}
		if n := f.b.Pending("orders", "billing"); n != 0 {
			t.Errorf("%d messages left unacknowledged", n)
		}
	})
}

// TestRouterShutdownRedelivers stops a Router while a handler is still
// working: Run returns, the unfinished messages are given back, and the
// next Router gets them (at least once), with everything handled once
// overall except those given back.
func TestRouterShutdownRedelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		var mu sync.Mutex
		seen := map[string]int{}
		started := make(chan struct{})
		r := f.router(pubsub.RouterOptions{Concurrency: 2})
		r.Handle("t", func(ctx context.Context, m *pubsub.Message) error {
			mu.Lock()
			seen[m.ID]++
			mu.Unlock()
			if m.Key == "slow" {
				close(started)
				<-ctx.Done() // stuck until Run ends
				return ctx.Err()
			}
			return nil
		})
		stop := run(t, r)
		f.publish(event("t", "slow", 1), event("t", "slow", 2), event("t", "fast", 1), event("t", "fast", 2))
		<-started
		synctest.Wait() // fast ones done; slow-2 waits behind slow-1
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		if n := f.b.Pending("orders", "billing"); n != 2 {
			t.Fatalf("%d messages pending after shutdown, want the 2 slow ones", n)
		}

		again := f.consume("t", 2)
		if diff := cmp.Diff([]string{"slow-1", "slow-2"}, again); diff != "" {
			t.Errorf("redelivered (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int{"slow-1": 1, "fast-1": 1, "fast-2": 1}, seen); diff != "" {
			t.Errorf("first router saw (-want +got):\n%s", diff)
		}
	})
}

// TestParkedRequeue parks a message, lists it, requeues it to its topic
// once the handler is fixed, and sees it handled and gone from the park.
func TestParkedRequeue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		fixed := false
		var handled []string
		c := newCounter(1)
		r := f.router(pubsub.RouterOptions{Hooks: pubsub.RouterHooks{OnParked: func(pubsub.ParkInfo) { c.add(1) }}})
		r.Handle("t", func(_ context.Context, m *pubsub.Message) error {
			if !fixed {
				return pubsub.Permanent(errors.New("unknown field"))
			}
			handled = append(handled, m.ID)
			return nil
		})
		stop := run(t, r)
		orig := event("t", "k", 1)
		orig.Subject = "order/1"
		orig.Time = time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC)
		// An extension of the user's own that merely starts like the park
		// extensions stays with the message.
		orig.Extensions = map[string]string{"tenant": "a", "fjordparkzone": "eu"}
		f.publish(orig)
		<-c.done
		stop()

		p := pubsub.NewParked(f.b.Subscription("parked", "ops"), nil)
		defer p.Close()
		var pms []*pubsub.ParkedMessage
		for pm, err := range p.List(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			pms = append(pms, pm)
		}
		if len(pms) != 1 {
			t.Fatalf("%d parked, want 1", len(pms))
		}
		if diff := cmp.Diff(orig, pms[0].Message, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("parked original (-published +parked):\n%s", diff)
		}
		fixed = true
		to := f.b.Topic(pms[0].Topic)
		if err := p.Requeue(t.Context(), pms[0], to); err != nil {
			t.Fatal(err)
		}
		handled = append(handled, f.consume("t", 1)...)
		if diff := cmp.Diff([]string{"k-1"}, handled); diff != "" {
			t.Errorf("handled after requeue (-want +got):\n%s", diff)
		}
		if n := f.b.Pending("parked", "ops"); n != 0 {
			t.Errorf("%d still parked after requeue", n)
		}
	})
}

// nackAllSub is a subscription whose Nack gives back every message it
// holds, as stomppubsub's and rabbitpubsub's do (they end the subscription
// or channel, so that a key's messages come back in order).
type nackAllSub struct {
	*mempubsub.Subscription
	mu   sync.Mutex
	held []driver.AckID
}

func (s *nackAllSub) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	msgs, err := s.Subscription.Receive(ctx, max)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.held = append(s.held, m.AckID)
	}
	return msgs, err
}

func (s *nackAllSub) Nack(ctx context.Context, _ []driver.AckID) error {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	return s.Subscription.Nack(ctx, held)
}

// TestParkedListStopsEarly: a List loop that stops before the end (the
// CLI's --limit) leaves the messages it was yielded held, also over a
// driver whose Nack gives back everything held: discarding the first one
// listed removes it for good.
func TestParkedListStopsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		var parked []*driver.Message
		for i := range 3 {
			parked = append(parked, &driver.Message{Key: "k", Attributes: map[string]string{
				"id": fmt.Sprintf("k-%d", i), "source": "/test", "type": "t", "specversion": "1.0"}})
		}
		if err := f.parkTo.Send(t.Context(), parked); err != nil {
			t.Fatal(err)
		}
		p := pubsub.NewParked(&nackAllSub{Subscription: f.b.Subscription("parked", "ops")}, nil)
		var first *pubsub.ParkedMessage
		for pm, err := range p.List(t.Context()) {
			if err != nil {
				t.Fatal(err)
			}
			first = pm
			break
		}
		if err := p.Discard(t.Context(), first); err != nil {
			t.Fatalf("Discard: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, pm := range f.parked() {
			left = append(left, pm.Message.ID)
		}
		slices.Sort(left)
		if diff := cmp.Diff([]string{"k-1", "k-2"}, left); diff != "" {
			t.Errorf("parked after discarding %s (-want +got):\n%s", first.Message.ID, diff)
		}
	})
}

// TestRouterNoParkTopic checks that without a park topic a message that
// must be parked is never acknowledged (never lost).
func TestRouterNoParkTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mempubsub.New(nil)
		sub := b.Subscription("orders", "billing")
		defer sub.Close()
		c := newCounter(3)
		var errs []error
		r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Hooks: pubsub.RouterHooks{
			OnParked: func(i pubsub.ParkInfo) { errs = append(errs, i.Err); c.add(1) }}})
		stop := run(t, r)
		topic := pubsub.NewTopic(b.Topic("orders"), nil)
		defer topic.Close()
		if err := topic.Publish(t.Context(), event("nobody", "k", 1)); err != nil {
			t.Fatal(err)
		}
		<-c.done // three tries to park
		stop()
		for _, err := range errs {
			if !errors.Is(err, pubsub.ErrNoParkTopic) {
				t.Errorf("park error %v, want ErrNoParkTopic", err)
			}
		}
		if n := b.Pending("orders", "billing"); n != 1 {
			t.Errorf("%d pending, want the message kept", n)
		}
	})
}

// failingSub is a subscription whose Receive fails.
type failingSub struct {
	driver.Subscription
	err       error
	retryable bool
	calls     int
}

func (s *failingSub) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	s.calls++
	return nil, s.err
}
func (s *failingSub) IsRetryable(error) bool { return s.retryable }

// TestRouterReceiveError checks that Run returns a receive error that is
// not retryable, and retries one that is.
func TestRouterReceiveError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := errors.New("consumer deleted")
		r := pubsub.NewRouter(&failingSub{err: gone}, nil)
		if err := r.Run(t.Context()); !errors.Is(err, gone) {
			t.Fatalf("Run = %v, want %v", err, gone)
		}

		s := &failingSub{err: errBrokerDown, retryable: true}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		var hooked int
		r = pubsub.NewRouter(s, &pubsub.RouterOptions{Hooks: pubsub.RouterHooks{OnReceiveError: func(error) { hooked++ }}})
		if err := r.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run = %v, want context.DeadlineExceeded", err)
		}
		if s.calls < 3 || hooked != s.calls {
			t.Errorf("%d Receives, %d hook calls; want several retries, each reported", s.calls, hooked)
		}
	})
}

// TestRouterRegister checks the registration rules.
func TestRouterRegister(t *testing.T) {
	r := pubsub.NewRouter(&failingSub{}, nil)
	r.Handle("a", func(context.Context, *pubsub.Message) error { return nil })
	defer func() {
		if recover() == nil {
			t.Error("registering a second handler for a type did not panic")
		}
	}()
	r.Handle("a", func(context.Context, *pubsub.Message) error { return nil })
}

// recordingSub records the size of every Ack and can fail them.
type recordingSub struct {
	driver.Subscription
	mu      sync.Mutex
	acks    []int
	failAck error
}

func (s *recordingSub) Ack(ctx context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	s.acks = append(s.acks, len(ids))
	err := s.failAck
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Subscription.Ack(ctx, ids)
}

// TestRouterAcks checks that acknowledgements go in batches of at most
// AckBatch, each message once, and that a failed Ack is reported and
// leaves the messages to be delivered again.
func TestRouterAcks(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprint("fail=", fail), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				sub := &recordingSub{Subscription: f.b.Subscription("orders", "billing")}
				defer sub.Close()
				if fail {
					sub.failAck = errors.New("channel closed")
				}
				var ackErrs int
				c := newCounter(25)
				r := pubsub.NewRouter(sub, &pubsub.RouterOptions{AckBatch: 10, AckDelay: time.Second,
					Hooks: pubsub.RouterHooks{OnAckError: func(i pubsub.AckErrorInfo) { ackErrs += i.Messages }}})
				r.Handle("t", func(context.Context, *pubsub.Message) error { c.add(1); return nil })
				stop := run(t, r)
				var msgs []*pubsub.Message
				for i := range 25 {
					msgs = append(msgs, event("t", fmt.Sprint("k", i), i))
				}
				f.publish(msgs...)
				<-c.done
				stop()
				total := 0
				for _, n := range sub.acks {
					if n > 10 {
						t.Errorf("an Ack of %d IDs exceeds AckBatch 10", n)
					}
					total += n
				}
				if total != 25 {
					t.Errorf("acked %d IDs in %v, want 25", total, sub.acks)
				}
				wantPending, wantErrs := 0, 0
				if fail {
					wantPending, wantErrs = 25, 25
				}
				if n := f.b.Pending("orders", "billing"); n != wantPending {
					t.Errorf("%d pending, want %d", n, wantPending)
				}
				if ackErrs != wantErrs {
					t.Errorf("OnAckError counted %d messages, want %d", ackErrs, wantErrs)
				}
			})
		})
	}
}

// TestRouterExtract checks that the handler's context comes from Extract,
// with the per-attempt deadline.
func TestRouterExtract(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type traceKey struct{}
		f := newFixture(t)
		c := newCounter(1)
		var got string
		var hasDeadline bool
		r := f.router(pubsub.RouterOptions{HandlerTimeout: time.Minute,
			Extract: func(ctx context.Context, m *pubsub.Message) context.Context {
				return context.WithValue(ctx, traceKey{}, m.Extensions["traceparent"])
			}})
		r.Handle("t", func(ctx context.Context, m *pubsub.Message) error {
			got, _ = ctx.Value(traceKey{}).(string)
			_, hasDeadline = ctx.Deadline()
			c.add(1)
			return nil
		})
		stop := run(t, r)
		m := event("t", "k", 1)
		m.Extensions = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		f.publish(m)
		<-c.done
		stop()
		if got != m.Extensions["traceparent"] || !hasDeadline {
			t.Errorf("handler context: trace %q, deadline %v; want the extracted trace and a deadline", got, hasDeadline)
		}
	})
}

// TestRouterBatchParks checks that a batch whose handler reports poison is
// parked whole, each message with the reason, and acknowledged.
func TestRouterBatchParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		c := newCounter(3)
		r := f.router(pubsub.RouterOptions{Hooks: pubsub.RouterHooks{OnParked: func(pubsub.ParkInfo) { c.add(1) }}})
		r.HandleBatch("t", func(context.Context, []*pubsub.Message) error {
			return fmt.Errorf("decode: %w", pubsub.ErrPoison)
		}, &pubsub.BatchOptions{Size: 3})
		stop := run(t, r)
		f.publish(event("t", "a", 1), event("t", "b", 2), event("t", "c", 3))
		<-c.done
		stop()
		pms := f.parked()
		var ids []string
		for _, pm := range pms {
			ids = append(ids, pm.Message.ID)
			if want := "batch poison: decode: pubsub: poison message"; pm.Reason != want || pm.Attempts != 1 {
				t.Errorf("parked %s: reason %q, attempts %d; want %q, 1", pm.Message.ID, pm.Reason, pm.Attempts, want)
			}
		}
		slices.Sort(ids)
		if diff := cmp.Diff([]string{"a-1", "b-2", "c-3"}, ids); diff != "" {
			t.Errorf("parked (-want +got):\n%s", diff)
		}
		if n := f.b.Pending("orders", "billing"); n != 0 {
			t.Errorf("%d left unacknowledged", n)
		}
	})
}

// TestRouterAtLeastOnceAcrossRestarts stops and restarts the consumer
// while messages of many keys are being handled, with failures injected:
// every message is handled at least once, and each key's messages are
// first handled in the order published.
func TestRouterAtLeastOnceAcrossRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		const keys, perKey = 10, 30
		var mu sync.Mutex
		tries := map[string]int{}
		first := map[string][]int{} // key → seqs in order of first success
		succeeded := map[string]bool{}
		var successes int
		progress := make(chan struct{}, keys*perKey*4)
		handler := func(ctx context.Context, m *pubsub.Message) error {
			time.Sleep(time.Millisecond) // fake time: handlers overlap with the stops
			mu.Lock()
			defer mu.Unlock()
			tries[m.ID]++
			if tries[m.ID]%4 == 1 && len(m.ID)%3 == 0 {
				return errors.New("injected failure")
			}
			if !succeeded[m.ID] {
				succeeded[m.ID] = true
				var seq int
				fmt.Sscanf(m.ID[strings.LastIndex(m.ID, "-")+1:], "%d", &seq)
				first[m.Key] = append(first[m.Key], seq)
			}
			successes++
			progress <- struct{}{}
			return nil
		}
		var msgs []*pubsub.Message
		for i := range perKey {
			for k := range keys {
				msgs = append(msgs, event("t", fmt.Sprint("key", k), i))
			}
		}
		f.publish(msgs...)
		for round := 0; ; round++ {
			r := f.router(pubsub.RouterOptions{Concurrency: 4, MaxAttempts: 100, MaxInFlight: 40})
			r.Handle("t", handler)
			stop := run(t, r)
			for range 70 {
				<-progress
				mu.Lock()
				all := len(succeeded) == keys*perKey
				mu.Unlock()
				if all {
					break
				}
			}
			stop()
			mu.Lock()
			all := len(succeeded) == keys*perKey
			mu.Unlock()
			if all {
				break
			}
			if round > 20 {
				t.Fatalf("only %d of %d messages handled after %d rounds", len(succeeded), keys*perKey, round)
			}
		}
		want := make([]int, perKey)
		for i := range want {
			want[i] = i
		}
		for k := range keys {
			if diff := cmp.Diff(want, first[fmt.Sprint("key", k)]); diff != "" {
				t.Errorf("key%d first handled out of order (-want +got):\n%s", k, diff)
			}
		}
		if n := f.b.Pending("orders", "billing"); n != 0 {
			t.Errorf("%d messages unacknowledged at the end", n)
		}
	})
}
