package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// event returns a valid message of type typ with key key.
func event(typ, key string, n int) *pubsub.Message {
	return &pubsub.Message{ID: fmt.Sprintf("%s-%d", key, n), Source: "/test", Type: typ, Key: key,
		Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// fakeTopic is a driver.Topic that records the size of every Send and
// fails the first Fails of them with Err.
type fakeTopic struct {
	mu        sync.Mutex
	fails     int
	err       error
	retryable bool
	gate      chan struct{} // when set, every Send waits for it to be closed
	sizes     []int
	sent      []*driver.Message
}

var errBrokerDown = errors.New("broker down")

func (f *fakeTopic) Send(ctx context.Context, msgs []*driver.Message) error {
	f.mu.Lock()
	gate := f.gate
	f.sizes = append(f.sizes, len(msgs))
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails != 0 {
		f.fails--
		return f.err
	}
	f.sent = append(f.sent, msgs...)
	return nil
}

func (f *fakeTopic) IsRetryable(err error) bool { return f.retryable && errors.Is(err, errBrokerDown) }
func (f *fakeTopic) Close() error               { return nil }

func (f *fakeTopic) snapshot() (sizes []int, sent int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.sizes...), len(f.sent)
}

// TestPublishInvalid checks that one invalid message fails the whole call
// with an *InvalidMessageError naming the attribute, and nothing is sent.
func TestPublishInvalid(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *pubsub.Message)
		attr   string
	}{
		{"no id", func(m *pubsub.Message) { m.ID = "" }, "id"},
		{"no source", func(m *pubsub.Message) { m.Source = "" }, "source"},
		{"no type", func(m *pubsub.Message) { m.Type = "" }, "type"},
		{"control character", func(m *pubsub.Message) { m.Subject = "a\nb" }, "subject"},
		{"upper-case extension", func(m *pubsub.Message) { m.Extensions = map[string]string{"Trace": "x"} }, "Trace"},
		{"core attribute as extension", func(m *pubsub.Message) { m.Extensions = map[string]string{"id": "x"} }, "id"},
		{"invalid UTF-8", func(m *pubsub.Message) { m.Type = "\xff" }, "type"},
		// RFC 3339 has four-digit years: such a time would be sent, and
		// then parked by every consumer as not a valid CloudEvent.
		{"time after year 9999", func(m *pubsub.Message) { m.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		{"time before year 0", func(m *pubsub.Message) { m.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		// The partitioning extension carries Key: set as an extension it
		// would be dropped, or would replace Key, on the way.
		{"partitionkey as extension", func(m *pubsub.Message) { m.Extensions = map[string]string{"partitionkey": "x"} }, "partitionkey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTopic{}
			topic := pubsub.NewTopic(f, nil)
			defer topic.Close()
			bad := event("t", "k", 2)
			tc.modify(bad)
			err := topic.Publish(t.Context(), event("t", "k", 1), bad)
			var ie *pubsub.InvalidMessageError
			if !errors.As(err, &ie) || !errors.Is(err, pubsub.ErrInvalidMessage) {
				t.Fatalf("Publish = %v, want an *InvalidMessageError", err)
			}
			if ie.Attribute != tc.attr {
				t.Errorf("InvalidMessageError.Attribute = %q, want %q (%v)", ie.Attribute, tc.attr, err)
			}
			if sizes, _ := f.snapshot(); len(sizes) != 0 {
				t.Errorf("driver Sends = %v, want none", sizes)
			}
		})
	}
}

// TestPublishCoalesces checks group commit: while one Send is in flight,
// concurrent Publish calls queue up and go out together, in Sends of at
// most MaxBatch.
func TestPublishCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTopic{gate: make(chan struct{})}
		topic := pubsub.NewTopic(f, &pubsub.TopicOptions{MaxBatch: 4})
		defer topic.Close()
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		wg.Go(func() { errs <- topic.Publish(ctx, event("t", "first", 0)) })
		synctest.Wait() // the first Send is in flight, waiting at the gate
		for i := range 10 {
			wg.Go(func() { errs <- topic.Publish(ctx, event("t", "k", i)) })
		}
		wg.Go(func() { errs <- topic.Publish(ctx, event("t", "a", 1), event("t", "a", 2)) })
		synctest.Wait() // all queued behind it
		close(f.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		sizes, sent := f.snapshot()
		if sent != 13 {
			t.Errorf("sent %d messages, want 13", sent)
		}
		if len(sizes) != 4 || sizes[0] != 1 {
			t.Errorf("Send sizes = %v, want the first alone and the other 12 messages in 3 Sends of at most 4", sizes)
		}
		for _, n := range sizes {
			if n > 4 {
				t.Errorf("a Send of %d messages exceeds MaxBatch 4 (sizes %v)", n, sizes)
			}
		}
	})
}

// TestPublishLargeCall checks that one Publish of more than MaxBatch
// messages is sent in order, in Sends of MaxBatch.
func TestPublishLargeCall(t *testing.T) {
	f := &fakeTopic{}
	topic := pubsub.NewTopic(f, &pubsub.TopicOptions{MaxBatch: 3})
	defer topic.Close()
	var msgs []*pubsub.Message
	for i := range 8 {
		msgs = append(msgs, event("t", "k", i))
	}
	if err := topic.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	sizes, _ := f.snapshot()
	if diff := cmp.Diff([]int{3, 3, 2}, sizes); diff != "" {
		t.Errorf("Send sizes (-want +got):\n%s", diff)
	}
	for i, m := range f.sent {
		if want := fmt.Sprintf("k-%d", i); m.Attributes["id"] != want {
			t.Errorf("message %d has id %q, want %q", i, m.Attributes["id"], want)
		}
	}
}

// TestPublishRetries checks retries of retryable errors, with backoff, and
// the errors after MaxAttempts, for errors that are not retryable and when
// the caller's context ends.
func TestPublishRetries(t *testing.T) {
	boom := errors.New("bad request")
	tests := []struct {
		name        string
		fails       int
		err         error
		retryable   bool
		maxAttempts int
		timeout     time.Duration
		wantSends   int
		wantErr     bool
		unavailable bool
	}{
		{"recovers", 3, errBrokerDown, true, 10, 0, 4, false, false},
		{"gives up after MaxAttempts", -1, errBrokerDown, true, 3, 0, 3, true, true},
		{"not retryable", -1, boom, false, 10, 0, 1, true, false},
		{"until the context ends", -1, errBrokerDown, true, -1, 10 * time.Second, 0, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeTopic{fails: tc.fails, err: tc.err, retryable: tc.retryable}
				var sends []pubsub.SendInfo
				topic := pubsub.NewTopic(f, &pubsub.TopicOptions{MaxAttempts: tc.maxAttempts,
					Hooks: pubsub.TopicHooks{OnSend: func(i pubsub.SendInfo) { sends = append(sends, i) }}})
				defer topic.Close()
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				start := time.Now()
				err := topic.Publish(ctx, event("t", "k", 1))
				elapsed := time.Since(start)
				topic.Close() // waits for the sender: sends is complete
				if (err != nil) != tc.wantErr {
					t.Fatalf("Publish = %v, want error %v", err, tc.wantErr)
				}
				if got := errors.Is(err, pubsub.ErrUnavailable); got != tc.unavailable {
					t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tc.unavailable)
				}
				if err != nil && !errors.Is(err, tc.err) {
					t.Errorf("Publish = %v, want it to wrap the driver's %v", err, tc.err)
				}
				if tc.wantSends > 0 && len(sends) != tc.wantSends {
					t.Errorf("%d Sends, want %d", len(sends), tc.wantSends)
				}
				if tc.timeout > 0 {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Publish = %v, want it to wrap context.DeadlineExceeded", err)
					}
					if elapsed != tc.timeout {
						t.Errorf("gave up after %v, want the context's %v", elapsed, tc.timeout)
					}
				}
				for i, s := range sends {
					if s.Attempt != i+1 {
						t.Errorf("Send %d has Attempt %d", i, s.Attempt)
					}
					if s.RetryIn > 2*time.Second {
						t.Errorf("Send %d: RetryIn %v exceeds MaxBackoff", i, s.RetryIn)
					}
				}
			})
		})
	}
}

// TestPublishAbandonedWhileQueued checks that a caller whose context ends
// while its request waits behind a Send in flight gets the context's error
// and its message is not sent.
func TestPublishAbandonedWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeTopic{gate: make(chan struct{})}
		topic := pubsub.NewTopic(f, nil)
		defer topic.Close()
		first := make(chan error, 1)
		go func() { first <- topic.Publish(t.Context(), event("t", "k", 1)) }()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := topic.Publish(ctx, event("t", "k", 2)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued Publish = %v, want context.DeadlineExceeded", err)
		}
		close(f.gate)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if _, sent := f.snapshot(); sent != 1 {
			t.Errorf("sent %d messages, want only the first", sent)
		}
	})
}

// TestPublishInjectAndHooks checks that Inject works on a copy (the
// caller's message is unchanged) and OnPublish sees every call.
func TestPublishInjectAndHooks(t *testing.T) {
	type traceKey struct{}
	b := mempubsub.New(nil)
	b.CreateSubscription("orders", "s")
	var infos []pubsub.PublishInfo
	topic := pubsub.NewTopic(b.Topic("orders"), &pubsub.TopicOptions{
		Inject: func(ctx context.Context, m *pubsub.Message) {
			if m.Extensions == nil {
				m.Extensions = map[string]string{}
			}
			m.Extensions["traceparent"] = ctx.Value(traceKey{}).(string)
		},
		Hooks: pubsub.TopicHooks{OnPublish: func(i pubsub.PublishInfo) { infos = append(infos, i) }},
	})
	defer topic.Close()
	ctx := context.WithValue(t.Context(), traceKey{}, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	m := event("t", "k", 1)
	m.Extensions = map[string]string{"tenant": "a"}
	if err := topic.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"tenant": "a"}, m.Extensions); diff != "" {
		t.Errorf("caller's extensions changed (-want +got):\n%s", diff)
	}
	sub := b.Subscription("orders", "s")
	defer sub.Close()
	got, err := sub.Receive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tp := got[0].Attributes["traceparent"]; tp != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent = %q", tp)
	}
	if len(infos) != 1 || infos[0].Messages != 1 || infos[0].Err != nil {
		t.Errorf("OnPublish infos = %+v, want one of 1 message without error", infos)
	}
}

// TestPublishAfterClose checks ErrClosed.
func TestPublishAfterClose(t *testing.T) {
	topic := pubsub.NewTopic(&fakeTopic{}, nil)
	if err := topic.Close(); err != nil {
		t.Fatal(err)
	}
	if err := topic.Publish(t.Context(), event("t", "k", 1)); !errors.Is(err, pubsub.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

// pingTopic is a fakeTopic that can ping.
type pingTopic struct {
	fakeTopic
	err error
}

func (p *pingTopic) Ping(context.Context) error { return p.err }

// TestTopicPing checks that Ping reaches a driver.Pinger and says when the
// driver cannot ping.
func TestTopicPing(t *testing.T) {
	if err := pubsub.NewTopic(&fakeTopic{}, nil).Ping(t.Context()); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Ping without a Pinger = %v, want errors.ErrUnsupported", err)
	}
	if err := pubsub.NewTopic(&pingTopic{err: errBrokerDown}, nil).Ping(t.Context()); !errors.Is(err, errBrokerDown) {
		t.Errorf("Ping = %v, want the driver's error", err)
	}
}
