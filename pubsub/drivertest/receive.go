package drivertest

import (
	"context"
	"errors"
	"testing"
)

// testReceiveBlocks checks that Receive on an empty subscription blocks
// until its context ends and returns the context's error: the deadline's,
// and the cancellation's.
func (s *suite) testReceiveBlocks(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub := e.sub("sub")
	e.quiet(sub, "Receive on an empty subscription")

	ctx, cancel := context.WithCancel(e.ctx)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := sub.Receive(ctx, 10)
		done <- result{len(got), err}
	}()
	// Whether Receive is waiting yet or not, it must return the error.
	cancel()
	select {
	case r := <-done:
		if r.err == nil || !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Receive after cancel = %d messages, %v; want context.Canceled", r.n, r.err)
		}
	case <-e.ctx.Done():
		t.Fatal("Receive did not return after its context was canceled")
	}
}

// testReceiveWakes checks that a Receive already waiting returns a message
// sent after it started.
func (s *suite) testReceiveWakes(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	m := message(0, "")
	type result struct {
		got []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := sub.Receive(e.ctx, 10)
		if err == nil {
			err = sub.Ack(e.ctx, ackIDs(got))
		}
		done <- result{ids(got), err}
	}()
	e.send(tp, m)
	r := <-done
	if r.err != nil {
		t.Fatalf("waiting Receive: %v", r.err)
	}
	if len(r.got) != 1 || r.got[0] != m.Attributes["id"] {
		t.Fatalf("waiting Receive got ids %v, want [%s]", r.got, m.Attributes["id"])
	}
}

// testReceiveMax checks that Receive never returns more than max messages.
func (s *suite) testReceiveMax(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(25)
	e.send(tp, all...)
	var got []string
	for _, max := range []int{1, 3, 7, 100} {
		if len(got) == len(all) {
			break
		}
		ms, err := sub.Receive(e.ctx, max)
		if err != nil {
			t.Fatalf("Receive(max %d): %v", max, err)
		}
		checkReceived(t, ms, max)
		e.ack(sub, ms...)
		got = append(got, ids(ms)...)
	}
	rest := e.receive(sub, len(all)-len(got))
	e.ack(sub, rest...)
}

// testReceiveAfterClose checks that Receive, Ack and Nack on a closed
// subscription fail with errors that are not retryable.
func (s *suite) testReceiveAfterClose(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	e.send(tp, messages(2)...)
	got := e.receive(sub, 1)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if ms, err := sub.Receive(e.ctx, 10); err == nil {
		t.Errorf("Receive after Close returned %d messages, want an error", len(ms))
	} else if sub.IsRetryable(err) {
		t.Errorf("Receive after Close: IsRetryable(%v) = true, want false", err)
	}
	if err := sub.Ack(e.ctx, ackIDs(got)); err == nil {
		t.Error("Ack after Close succeeded, want an error")
	}
	if err := sub.Nack(e.ctx, ackIDs(got)); err == nil {
		t.Error("Nack after Close succeeded, want an error")
	}
	// The messages are still there for the next attachment.
	if s.h.Features.Redelivery {
		sub2 := e.sub("sub")
		e.ack(sub2, e.receive(sub2, 2)...)
	}
}

// testFanOut checks that two durable subscriptions on one destination each
// receive every message.
func (s *suite) testFanOut(t *testing.T) {
	e := s.newEnv(t, "a", "b")
	a, b, tp := e.sub("a"), e.sub("b"), e.topic()
	all := messages(30)
	e.send(tp, all[:10]...)
	e.send(tp, all[10:]...)
	gotA := e.receive(a, len(all))
	checkSameIDs(t, "subscription a", all, gotA)
	gotB := e.receive(b, len(all))
	checkSameIDs(t, "subscription b", all, gotB)
	e.ack(a, gotA...)
	e.ack(b, gotB...)
	e.quiet(a, "subscription a after receiving everything")
}
