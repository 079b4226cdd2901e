package drivertest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// testRoundTrip checks that every CloudEvents attribute, extension, the key
// and binary data (empty, every byte value, about 1 MB) come back as sent.
func (s *suite) testRoundTrip(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	big := make([]byte, 1_000_000)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	full := &driver.Message{
		Attributes: map[string]string{
			"id": uuid.NewString(), "source": "https://example.com/shop/orders?x=1&y=ü", "specversion": "1.0",
			"type": "shop.order.placed", "subject": "order/42 ünïcødé", "time": "2026-11-25T10:11:12.123456789Z",
			"datacontenttype": "application/octet-stream", "dataschema": "https://example.com/schemas/order.v1",
			"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
			"sequence": "00000000000000000042", "fjordx1": "a value with spaces, commas; and = signs",
		},
		Key:  "order/42",
		Data: allBytes,
	}
	minimal := &driver.Message{Attributes: map[string]string{
		"id": uuid.NewString(), "source": "/s", "specversion": "1.0", "type": "t"}}
	large := &driver.Message{Attributes: map[string]string{
		"id": uuid.NewString(), "source": "/s", "specversion": "1.0", "type": "big",
		"datacontenttype": "application/octet-stream"}, Key: "big", Data: big}
	want := []*driver.Message{full, minimal, large}
	e.send(tp, full, minimal)
	e.send(tp, large)

	got := e.receive(sub, len(want))
	byID := make(map[string]*driver.Message)
	for _, m := range got {
		byID[m.Attributes["id"]] = m
	}
	for _, w := range want {
		g := byID[w.Attributes["id"]]
		if g == nil {
			t.Fatalf("message of type %q not received; got ids %v", w.Attributes["type"], ids(got))
		}
		// Data apart: cmp is slow on a megabyte.
		if diff := cmp.Diff(w, g, cmpopts.EquateEmpty(),
			cmpopts.IgnoreFields(driver.Message{}, "AckID", "Deliveries", "PublishTime", "Data")); diff != "" {
			t.Errorf("message of type %q (-sent +received):\n%s", w.Attributes["type"], diff)
		}
		if !bytes.Equal(w.Data, g.Data) {
			t.Errorf("message of type %q: received %d bytes of data that differ from the %d sent", w.Attributes["type"], len(g.Data), len(w.Data))
		}
		if s.h.Features.Deliveries && g.Deliveries != 1 {
			t.Errorf("message of type %q: Deliveries = %d on first delivery, want 1", w.Attributes["type"], g.Deliveries)
		}
	}
	e.ack(sub, got...)
}

// testBatches sends many messages in Send calls of several sizes and
// receives each exactly once.
func (s *suite) testBatches(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	all := messages(600)
	for i, size := 0, 1; i < len(all); size = size*3 + 1 {
		n := min(size, len(all)-i)
		e.send(tp, all[i:i+n]...)
		i += n
	}
	got := e.receive(sub, len(all))
	checkSameIDs(t, "after batched sends", all, got)
	e.ack(sub, got...)
}

// testConcurrentSenders sends from several goroutines through one topic
// and receives every message exactly once.
func (s *suite) testConcurrentSenders(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	const senders, each = 8, 40
	all := messages(senders * each)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for w := range senders {
		wg.Go(func() {
			mine := all[w*each : (w+1)*each]
			for i := 0; i < len(mine); i += 4 {
				if err := tp.Send(e.ctx, mine[i:i+4]); err != nil {
					errs <- fmt.Errorf("sender %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := e.receive(sub, len(all))
	checkSameIDs(t, "after concurrent sends", all, got)
	e.ack(sub, got...)
}

// testSendAfterClose checks that Send on a closed topic fails with an
// error that is not retryable.
func (s *suite) testSendAfterClose(t *testing.T) {
	e := s.newEnv(t, "sub")
	tp := e.topic()
	if err := tp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := tp.Send(e.ctx, messages(1))
	if err == nil {
		t.Fatal("Send after Close succeeded, want an error")
	}
	if tp.IsRetryable(err) {
		t.Errorf("Send after Close: IsRetryable(%v) = true, want false (retrying cannot help)", err)
	}
}

// testLongAttributes sends messages whose attributes are longer than some
// transports carry (AMQP short strings end at 255 bytes, headers are
// bounded by frame and line limits): each one either arrives intact, or
// Send fails with an error that is not retryable (sending it again cannot
// help), and the topic and subscription go on working either way.
func (s *suite) testLongAttributes(t *testing.T) {
	e := s.newEnv(t, "sub")
	sub, tp := e.sub("sub"), e.topic()
	long := map[string]int{"id": 300, "source": 300, "type": 300, "subject": 300,
		"datacontenttype": 300, "fjordlong": 200_000}
	for _, attr := range []string{"id", "source", "type", "subject", "datacontenttype", "fjordlong"} {
		m := message(0, "k")
		m.Attributes[attr] = strings.Repeat("x", long[attr])
		if err := tp.Send(e.ctx, []*driver.Message{m}); err != nil {
			if tp.IsRetryable(err) {
				t.Errorf("Send with a %d-byte %q: IsRetryable(%v) = true, want false: the same message fails again", long[attr], attr, err)
			}
			continue
		}
		got := e.receive(sub, 1)
		if diff := cmp.Diff(m.Attributes, got[0].Attributes); diff != "" {
			t.Errorf("message with a %d-byte %q (-sent +received):\n%.2000s", long[attr], attr, diff)
		}
		e.ack(sub, got...)
	}
	after := message(1, "k")
	e.send(tp, after)
	checkSameIDs(t, "a message sent after the long ones", []*driver.Message{after}, e.receive(sub, 1))
}
