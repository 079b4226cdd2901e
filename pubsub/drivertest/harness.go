package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// suite holds the harness.
type suite struct {
	h Harness
}

// env is what one subtest works with: its context and destination.
type env struct {
	t    *testing.T
	s    *suite
	ctx  context.Context
	dest *Destination
}

// newEnv starts a subtest: a leak check, a context bounded by
// Harness.Timeout and a fresh destination with the durable subscriptions
// subs. It returns nil after t.Skip when the harness reports
// errors.ErrUnsupported.
func (s *suite) newEnv(t *testing.T, subs ...string) *env {
	t.Helper()
	if !s.h.NoLeakCheck {
		// Registered first, so it runs after every other cleanup.
		ignore := goleak.IgnoreCurrent()
		t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	}
	ctx, cancel := context.WithTimeout(t.Context(), s.h.Timeout)
	t.Cleanup(cancel)
	d, err := s.h.NewDestination(ctx, t, subs)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("NewDestination(%q): %v", subs, err)
	}
	if err != nil {
		t.Fatalf("NewDestination(%q): %v", subs, err)
	}
	if d == nil || d.Topic == nil || d.Subscription == nil {
		t.Fatalf("NewDestination(%q) returned a Destination without Topic or Subscription", subs)
	}
	return &env{t: t, s: s, ctx: ctx, dest: d}
}

// topic opens a topic that is closed at cleanup unless the test closed it.
func (e *env) topic() driver.Topic {
	e.t.Helper()
	tp, err := e.dest.Topic(e.ctx)
	if err != nil {
		e.t.Fatalf("open topic: %v", err)
	}
	c := &closer{c: tp}
	e.t.Cleanup(func() { c.close(e.t, "topic") })
	return &closingTopic{Topic: tp, c: c}
}

// sub attaches to the durable subscription name; it is closed at cleanup
// unless the test closed it.
func (e *env) sub(name string) driver.Subscription {
	e.t.Helper()
	sb, err := e.dest.Subscription(e.ctx, name)
	if err != nil {
		e.t.Fatalf("open subscription %q: %v", name, err)
	}
	c := &closer{c: sb}
	e.t.Cleanup(func() { c.close(e.t, "subscription "+name) })
	return &closingSub{Subscription: sb, c: c}
}

// closer closes once, so that cleanup does not close again what a test
// closed.
type closer struct {
	once sync.Once
	err  error
	c    interface{ Close() error }
}

func (c *closer) close(t *testing.T, what string) {
	c.once.Do(func() {
		c.err = c.c.Close()
		if c.err != nil {
			t.Errorf("close %s: %v", what, c.err)
		}
	})
}

type closingTopic struct {
	driver.Topic
	c *closer
}

func (t *closingTopic) Close() error {
	t.c.once.Do(func() { t.c.err = t.Topic.Close() })
	return t.c.err
}

type closingSub struct {
	driver.Subscription
	c *closer
}

func (s *closingSub) Close() error {
	s.c.once.Do(func() { s.c.err = s.Subscription.Close() })
	return s.c.err
}

// message returns a minimal valid CloudEvent with a fresh id and the
// extension "seq".
func message(seq int, key string) *driver.Message {
	return &driver.Message{
		Attributes: map[string]string{
			"id": uuid.NewString(), "source": "/fjord/drivertest", "type": "fjord.test.sent",
			"specversion": "1.0", "seq": fmt.Sprint(seq),
		},
		Key:  key,
		Data: fmt.Appendf(nil, `{"seq":%d}`, seq),
	}
}

// messages returns n messages with seq 0..n-1 and keys cycling through
// keys (none when keys is empty).
func messages(n int, keys ...string) []*driver.Message {
	out := make([]*driver.Message, n)
	for i := range out {
		var k string
		if len(keys) > 0 {
			k = keys[i%len(keys)]
		}
		out[i] = message(i, k)
	}
	return out
}

// send sends msgs in one call and fails the test on error.
func (e *env) send(tp driver.Topic, msgs ...*driver.Message) {
	e.t.Helper()
	if err := tp.Send(e.ctx, msgs); err != nil {
		e.t.Fatalf("Send(%d messages): %v", len(msgs), err)
	}
}

// receive receives until it has n messages, checking each Receive's
// contract (1 to max messages, an AckID on each).
func (e *env) receive(sub driver.Subscription, n int) []*driver.Message {
	e.t.Helper()
	var out []*driver.Message
	for len(out) < n {
		max := n - len(out)
		got, err := sub.Receive(e.ctx, max)
		if err != nil {
			e.t.Fatalf("Receive after %d of %d messages: %v", len(out), n, err)
		}
		checkReceived(e.t, got, max)
		out = append(out, got...)
	}
	return out
}

func checkReceived(t *testing.T, got []*driver.Message, max int) {
	t.Helper()
	if len(got) == 0 || len(got) > max {
		t.Fatalf("Receive(max %d) returned %d messages and no error, want 1 to %d", max, len(got), max)
	}
	for _, m := range got {
		if m == nil {
			t.Fatalf("Receive returned a nil message")
		}
		if m.AckID == nil {
			t.Fatalf("received message %q has no AckID", m.Attributes["id"])
		}
	}
}

// quiet receives for Harness.QuietWait and fails the test if anything
// comes, naming what.
func (e *env) quiet(sub driver.Subscription, what string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, e.s.h.QuietWait)
	defer cancel()
	got, err := sub.Receive(ctx, 100)
	if err == nil {
		e.t.Fatalf("%s: received %d messages (ids %v), want none", what, len(got), ids(got))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		e.t.Fatalf("%s: Receive with nothing to receive: %v, want context.DeadlineExceeded", what, err)
	}
}

func (e *env) ack(sub driver.Subscription, msgs ...*driver.Message) {
	e.t.Helper()
	if err := sub.Ack(e.ctx, ackIDs(msgs)); err != nil {
		e.t.Fatalf("Ack(%d): %v", len(msgs), err)
	}
}

func ackIDs(msgs []*driver.Message) []driver.AckID {
	out := make([]driver.AckID, len(msgs))
	for i, m := range msgs {
		out[i] = m.AckID
	}
	return out
}

// ids returns the messages' ids, sorted.
func ids(msgs []*driver.Message) []string {
	out := idsInOrder(msgs)
	sort.Strings(out)
	return out
}

// idsInOrder returns the ids of msgs in the order received.
func idsInOrder(msgs []*driver.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Attributes["id"]
	}
	return out
}

// checkSameIDs fails the test unless got holds exactly the messages of
// want, each once, in any order.
func checkSameIDs(t *testing.T, what string, want, got []*driver.Message) {
	t.Helper()
	w, g := ids(want), ids(got)
	if slices.Equal(w, g) {
		return
	}
	missing, extra := diffSets(w, g)
	t.Fatalf("%s: got %d messages, want %d; missing %d %v, unexpected or duplicated %d %v",
		what, len(g), len(w), len(missing), head(missing), len(extra), head(extra))
}

// diffSets returns what of sorted want is not in sorted got and what of got
// is not in want (as a multiset).
func diffSets(want, got []string) (missing, extra []string) {
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i] < got[j]:
			missing = append(missing, want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// ReceiveN receives from s until it has n messages, failing t on an error
// or after 30 seconds (a failure guard, never a wait). Adapters' own tests
// use it.
func ReceiveN(t testing.TB, s driver.Subscription, n int) []*driver.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var got []*driver.Message
	for len(got) < n {
		msgs, err := s.Receive(ctx, n-len(got))
		if err != nil {
			t.Fatalf("Receive after %d of %d messages: %v", len(got), n, err)
		}
		got = append(got, msgs...)
	}
	return got
}

// AckIDs returns the AckIDs of msgs, for Ack and Nack.
func AckIDs(msgs []*driver.Message) []driver.AckID { return ackIDs(msgs) }
