package drivertest

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// testAckNeverRedelivered acks some messages, closes the subscription and
// attaches again: only the messages not acked come back (when the broker
// redelivers), and the acked ones never do.
func (s *suite) testAckNeverRedelivered(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(10)
	e.send(tp, all...)
	got := e.receive(sub, len(all))
	checkSameIDs(t, "first delivery", all, got)
	var acked, unacked, fromFloor []*driver.Message
	for i, m := range got {
		if i%2 == 1 && fromFloor == nil {
			fromFloor = got[i:]
		}
		if i%2 == 0 {
			acked = append(acked, m)
		} else {
			unacked = append(unacked, m)
		}
	}
	e.ack(sub, acked...)
	if !s.h.Features.Redelivery {
		e.ack(sub, unacked...)
		unacked = nil
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	sub2 := e.sub("sub")
	if len(unacked) > 0 && s.h.ReplaysFromAckFloor {
		again := e.receive(sub2, len(fromFloor))
		if diff := cmp.Diff(idsInOrder(fromFloor), idsInOrder(again)); diff != "" {
			t.Errorf("replayed from the first unacked message after reattaching (-want +got):\n%s", diff)
		}
		e.ack(sub2, again...)
	} else if len(unacked) > 0 {
		again := e.receive(sub2, len(unacked))
		checkSameIDs(t, "redelivered after reattaching", unacked, again)
		e.ack(sub2, again...)
	}
	e.quiet(sub2, "after reattaching, with every message acked")
}

// testRedeliveredAfterClose checks that messages received and not acked
// come back to the next attachment, with their delivery count raised.
func (s *suite) testRedeliveredAfterClose(t *testing.T) {
	if !s.h.Features.Redelivery {
		t.Skip("the driver does not declare Features.Redelivery")
	}
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(3)
	e.send(tp, all...)
	first := e.receive(sub, len(all))
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sub2 := e.sub("sub")
	again := e.receive(sub2, len(all))
	checkSameIDs(t, "redelivered after Close", all, again)
	s.checkDeliveries(t, first, 1)
	s.checkDeliveries(t, again, 2)
	e.ack(sub2, again...)
	e.quiet(sub2, "after acking the redelivered messages")
}

// testRedeliveredAfterNack checks that nacked messages come back, with
// their delivery count raised, and that acking the redelivery settles them.
func (s *suite) testRedeliveredAfterNack(t *testing.T) {
	if !s.h.Features.Redelivery {
		t.Skip("the driver does not declare Features.Redelivery")
	}
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(4)
	e.send(tp, all...)
	first := e.receive(sub, len(all))
	if err := sub.Nack(e.ctx, ackIDs(first)); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	again := e.receive(sub, len(all))
	checkSameIDs(t, "redelivered after Nack", all, again)
	s.checkDeliveries(t, again, 2)
	e.ack(sub, again...)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.quiet(e.sub("sub"), "after acking the redelivered messages and reattaching")
}

// checkDeliveries checks the delivery counts when the driver reports them.
func (s *suite) checkDeliveries(t *testing.T, msgs []*driver.Message, want int) {
	t.Helper()
	if !s.h.Features.Deliveries {
		return
	}
	for _, m := range msgs {
		if m.Deliveries != want {
			t.Errorf("message %s: Deliveries = %d, want %d", m.Attributes["id"], m.Deliveries, want)
		}
	}
}

// testOrderedKeys sends the messages of many keys interleaved, in batches
// of varying size, and checks that each key's messages are received in the
// order sent.
func (s *suite) testOrderedKeys(t *testing.T) {
	if !s.h.Features.OrderedKeys {
		t.Skip("the driver does not declare Features.OrderedKeys")
	}
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	const keys, perKey = 16, 25
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%02d", i)
	}
	all := messages(keys*perKey, names...)
	for i, size := 0, 1; i < len(all); size = size%13 + 2 {
		n := min(size, len(all)-i)
		e.send(tp, all[i:i+n]...)
		i += n
	}
	got := e.receive(sub, len(all))
	checkSameIDs(t, "ordered keys", all, got)
	seqs := make(map[string][]int)
	for _, m := range got {
		n, err := strconv.Atoi(m.Attributes["seq"])
		if err != nil {
			t.Fatalf("message %s: seq %q: %v", m.Attributes["id"], m.Attributes["seq"], err)
		}
		seqs[m.Key] = append(seqs[m.Key], n)
	}
	for k, name := range names {
		var want []int
		for i := k; i < len(all); i += keys {
			want = append(want, i)
		}
		if diff := cmp.Diff(want, seqs[name]); diff != "" {
			t.Errorf("key %s: received seqs out of order (-sent +received):\n%s", name, diff)
		}
	}
	e.ack(sub, got...)
}

// testDedup sends a message again with the same source and id (in a later
// Send, with other data): only the first is received. The same id from
// another source is a different message, and so are a requeued copy (one
// with driver.RequeueAttribute) and a parked copy (one with
// driver.ParkAttribute, even empty): see driver.DedupKey.
func (s *suite) testDedup(t *testing.T) {
	if !s.h.Features.Dedup {
		t.Skip("the driver does not declare Features.Dedup")
	}
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	first := message(1, "k")
	dup := message(2, "k")
	dup.Attributes["id"] = first.Attributes["id"]
	other := message(3, "k")
	other.Attributes["id"] = first.Attributes["id"]
	other.Attributes["source"] = "/fjord/drivertest/other"
	requeued := message(4, "k")
	requeued.Attributes["id"] = first.Attributes["id"]
	requeued.Attributes[driver.RequeueAttribute] = "1"
	parked := message(5, "k")
	parked.Attributes["id"] = first.Attributes["id"]
	parked.Attributes[driver.ParkAttribute] = ""
	e.send(tp, first)
	e.send(tp, dup)
	e.send(tp, other)
	e.send(tp, requeued)
	e.send(tp, parked)
	got := e.receive(sub, 4)
	var seqs []string
	for _, m := range got {
		seqs = append(seqs, m.Attributes["seq"])
	}
	slices.Sort(seqs)
	if diff := cmp.Diff([]string{"1", "3", "4", "5"}, seqs); diff != "" {
		t.Errorf("received seqs (-want +got):\n%s", diff)
	}
	e.ack(sub, got...)
	e.quiet(sub, "after the duplicate")
}

// testOrderAfterNack receives the first messages of a key, nacks them in
// the order received and closes the subscription, as a Router that stops
// gives back what it holds: the next attachment receives the key's
// messages in the order sent, the nacked ones before those never received.
func (s *suite) testOrderAfterNack(t *testing.T) {
	if !s.h.Features.OrderedKeys || !s.h.Features.Redelivery {
		t.Skip("the driver does not declare Features.OrderedKeys and Features.Redelivery")
	}
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(10, "k")
	e.send(tp, all...)
	first := e.receive(sub, 4)
	if err := sub.Nack(e.ctx, ackIDs(first)); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sub2 := e.sub("sub")
	got := e.receive(sub2, len(all))
	var seqs []string
	for _, m := range got {
		seqs = append(seqs, m.Attributes["seq"])
	}
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	if diff := cmp.Diff(want, seqs); diff != "" {
		t.Errorf("received seqs after nacking the first 4 and reattaching (-want +got):\n%s", diff)
	}
	e.ack(sub2, got...)
}
