package stomppubsub

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// SubscriptionOptions configures OpenSubscription. The zero value works.
type SubscriptionOptions struct {
	Dial DialOptions
	// CompetingConsumers lets several Subscriptions on one queue receive
	// at the same time, sharing its messages; per-key order across them is
	// then lost, unless the Topic sends with MessageGroups. By default the subscription asks ActiveMQ Classic for an
	// exclusive consumer (activemq.exclusive): one receives, the others
	// stand by. Artemis needs the queue configured exclusive instead.
	CompetingConsumers bool
	// Prefetch is how many unacknowledged messages the broker sends ahead
	// (activemq.prefetchSize); 0 means 100.
	Prefetch int
	// Headers are further SUBSCRIBE headers ("selector").
	Headers map[string]string
}

// Subscription consumes one STOMP queue ("/queue/orders", or
// VirtualTopicQueue("billing", "orders") on ActiveMQ Classic) in
// client-individual ack mode over its own connection. It implements
// driver.Subscription and is safe for concurrent use.
//
// ActiveMQ Classic answers a STOMP NACK by moving the message to its
// dead-letter queue (ActiveMQ.DLQ) at once, which is not what Nack means
// here, so Nack ends the subscription instead (UNSUBSCRIBE): the broker
// gives back every message received on it and not acknowledged, flagged
// redelivered, and the next Receive subscribes again. Acks of the other
// messages received before a Nack (or before a lost connection) return
// ErrStaleAck; those messages come again. Package pubsub nacks only when a
// subscription stops, so nothing is delivered twice in the common case.
type Subscription struct {
	addr, destination string
	opts              SubscriptionOptions
	pumps             sync.WaitGroup

	mu struct {
		sync.Mutex
		link link
		sub  *stomp.Subscription
		buf  chan *stomp.Message // the pump's copy of sub.C
		gen  uint64              // counts SUBSCRIBEs; ackIDs carry it
		// unsubscribed is the generation a Nack ended on purpose.
		unsubscribed uint64
		closed       bool
	}
}

var _ driver.Subscription = (*Subscription)(nil)

type ackID struct {
	gen uint64
	msg *stomp.Message
}

// OpenSubscription connects to the broker at addr and subscribes to
// destination. opts may be nil.
func OpenSubscription(ctx context.Context, addr, destination string, opts *SubscriptionOptions) (*Subscription, error) {
	s := &Subscription{addr: addr, destination: destination}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Prefetch <= 0 {
		s.opts.Prefetch = 100
	}
	s.mu.link.addr, s.mu.link.opts = addr, s.opts.Dial
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.subscribeLocked(ctx); err != nil {
		s.mu.link.drop()
		return nil, err
	}
	return s, nil
}

// subscribeLocked returns the current subscription's channel and
// generation, connecting and subscribing when there is none.
func (s *Subscription) subscribeLocked(ctx context.Context) (chan *stomp.Message, uint64, error) {
	if s.mu.closed {
		return nil, 0, ErrClosed
	}
	if s.mu.sub != nil {
		return s.mu.buf, s.mu.gen, nil
	}
	conn, err := s.mu.link.get(ctx)
	if err != nil {
		return nil, 0, err
	}
	var sub *stomp.Subscription
	err = s.mu.link.bounded(ctx, func() (err error) {
		sub, err = conn.Subscribe(s.destination, stomp.AckClientIndividual, func(f *frame.Frame) error {
			f.Header.Set("activemq.prefetchSize", strconv.Itoa(s.opts.Prefetch))
			if !s.opts.CompetingConsumers {
				f.Header.Set("activemq.exclusive", "true")
			}
			for k, v := range s.opts.Headers {
				f.Header.Set(k, v)
			}
			return nil
		})
		return err
	})
	if err != nil {
		s.mu.link.drop()
		return nil, 0, classify("subscribe to "+s.destination, err)
	}
	// The pump starts at once: messages may arrive before the round trip
	// below is answered, and go-stomp would stall on them.
	buf := make(chan *stomp.Message, s.opts.Prefetch+1)
	s.pumps.Add(1)
	go s.pump(sub.C, buf)
	// go-stomp sends SUBSCRIBE without waiting for the broker. A round
	// trip after it does wait, since the broker handles a connection's
	// frames in order: from then on the queue exists (a virtual topic's
	// consumer queue gets copies of what is sent).
	if err := s.mu.link.ping(ctx); err != nil {
		return nil, 0, err // the connection is dropped, which ends the pump
	}
	s.mu.sub, s.mu.buf = sub, buf
	s.mu.gen++
	return buf, s.mu.gen, nil
}

// pump copies a subscription's messages into buf until go-stomp closes its
// channel (UNSUBSCRIBE, DISCONNECT or a lost connection). go-stomp buffers
// only 16 messages per subscription and then stalls the connection's frame
// loop, receipts included; buf holds the whole prefetch window (and the
// final error message), so the pump never blocks.
func (s *Subscription) pump(from <-chan *stomp.Message, buf chan<- *stomp.Message) {
	defer s.pumps.Done()
	defer close(buf)
	for m := range from {
		buf <- m
	}
}

// Receive waits until at least one message is available or ctx ends and
// returns up to n messages (at most the prefetch window). A lost
// connection is a *ConnectionError; the next Receive connects and
// subscribes again.
func (s *Subscription) Receive(ctx context.Context, n int) ([]*driver.Message, error) {
	n = min(max(n, 1), s.opts.Prefetch)
	for {
		s.mu.Lock()
		c, gen, err := s.subscribeLocked(ctx)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		var first *stomp.Message
		select {
		case m, ok := <-c:
			if !ok || m.Err != nil {
				if again, err := s.ended(gen, m); again {
					continue // a Nack replaced the subscription: wait on the new one
				} else {
					return nil, err
				}
			}
			first = m
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		msgs := []*driver.Message{toDriver(first, gen)}
		for len(msgs) < n {
			select {
			case m, ok := <-c:
				if !ok || m.Err != nil {
					return msgs, nil // the next Receive sees the end again
				}
				msgs = append(msgs, toDriver(m, gen))
			default:
				return msgs, nil
			}
		}
		return msgs, nil
	}
}

// ended handles the end of the subscription of generation gen (m is the
// error message, or nil when the channel closed). When a Nack ended it on
// purpose it reports again; otherwise the connection is dropped and the
// error returned.
func (s *Subscription) ended(gen uint64, m *stomp.Message) (again bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false, ErrClosed
	}
	if gen != s.mu.gen || s.mu.sub == nil && s.mu.unsubscribed == gen {
		return true, nil
	}
	s.mu.sub = nil
	s.mu.link.drop()
	if m != nil && m.Err != nil {
		return false, classify("receive from "+s.destination, m.Err)
	}
	return false, &ConnectionError{Op: "receive from " + s.destination, Err: stomp.ErrClosedUnexpectedly}
}

func toDriver(m *stomp.Message, gen uint64) *driver.Message {
	dm := decode(m.Header, m.Body)
	dm.AckID = ackID{gen: gen, msg: m}
	return dm
}

// Ack acknowledges the messages with ACK frames (client-individual)
// inside one STOMP transaction and waits for the receipt of its COMMIT:
// when Ack returns nil the broker has recorded every acknowledgement, so
// an acknowledged message does not come back even if the connection is
// lost right after. Messages received before the subscription was
// replaced are not acknowledged (the broker gives them back): Ack
// acknowledges the others and then returns ErrStaleAck.
func (s *Subscription) Ack(ctx context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	var current []*stomp.Message
	stale := 0
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok {
			return fmt.Errorf("stomppubsub: ack ID %v (%T) is not from this driver", id, id)
		}
		if a.gen != s.mu.gen || s.mu.sub == nil {
			stale++
			continue
		}
		current = append(current, a.msg)
	}
	if len(current) > 0 {
		conn := s.mu.link.conn
		err := s.mu.link.bounded(ctx, func() error {
			tx, err := conn.BeginWithError()
			if err != nil {
				return err
			}
			for _, m := range current {
				if err := tx.Ack(m); err != nil {
					return err
				}
			}
			return tx.CommitWithReceipt()
		})
		if err != nil {
			s.mu.sub = nil
			s.mu.link.drop()
			if ctx.Err() != nil {
				return &ConnectionError{Op: "ack", Err: err}
			}
			return classify("ack", err)
		}
	}
	if stale > 0 {
		return fmt.Errorf("%w (%d of %d messages)", ErrStaleAck, stale, len(ids))
	}
	return nil
}

// Nack gives messages back for redelivery by ending the current
// subscription (see Subscription); stale messages are already back and
// are skipped.
func (s *Subscription) Nack(ctx context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	current := false
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok {
			return fmt.Errorf("stomppubsub: ack ID %v (%T) is not from this driver", id, id)
		}
		current = current || (a.gen == s.mu.gen && s.mu.sub != nil)
	}
	if !current {
		return nil
	}
	sub := s.mu.sub
	s.mu.sub, s.mu.unsubscribed = nil, s.mu.gen
	if err := s.mu.link.bounded(ctx, func() error { return sub.Unsubscribe() }); err != nil {
		s.mu.link.drop() // dropping the connection gives the messages back too
		if ctx.Err() != nil {
			return &ConnectionError{Op: "nack", Err: err}
		}
		return classify("nack", err)
	}
	return nil
}

// IsRetryable reports whether err from Receive, Ack or Nack may succeed if
// tried again: connection losses and deadlines are; ErrStaleAck,
// ErrClosed and broker ERROR frames are not.
func (s *Subscription) IsRetryable(err error) bool { return isRetryable(err) }

// Close disconnects: the broker redelivers the messages received and not
// acknowledged. The queue and its messages stay.
func (s *Subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	s.mu.sub = nil
	err := s.mu.link.close()
	s.pumps.Wait()
	return err
}

// Features are what a Subscription with opts can promise on ActiveMQ
// Classic: redelivery (after Nack or Close); per-key order unless
// CompetingConsumers (an exclusive consumer receives a queue in order).
// Not delivery counts: over STOMP ActiveMQ sends only a "redelivered"
// flag. Not deduplication.
func Features(opts *SubscriptionOptions) driver.Features {
	return driver.Features{
		OrderedKeys: opts == nil || !opts.CompetingConsumers,
		Redelivery:  true,
	}
}

// VirtualTopic is the destination a Topic sends to for fan-out on
// ActiveMQ Classic: "/topic/VirtualTopic.<name>". Each consuming service
// reads its own durable queue, VirtualTopicQueue(service, name).
func VirtualTopic(name string) string { return "/topic/VirtualTopic." + name }

// VirtualTopicQueue is consumer's queue of the virtual topic name on
// ActiveMQ Classic: "/queue/Consumer.<consumer>.VirtualTopic.<name>". The
// broker creates it on the first subscription and from then on keeps a
// copy of every message sent to the topic, also while no one is
// subscribed; messages sent before it existed are not in it.
func VirtualTopicQueue(consumer, name string) string {
	return "/queue/Consumer." + consumer + ".VirtualTopic." + name
}

// Ping checks that the broker answers on the subscription's connection
// (one round trip). A lost connection is a *ConnectionError; the next
// Receive connects again.
func (s *Subscription) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if s.mu.link.conn == nil {
		_, _, err := s.subscribeLocked(ctx)
		return err
	}
	err := s.mu.link.ping(ctx)
	if err != nil {
		s.mu.sub = nil
	}
	return err
}
