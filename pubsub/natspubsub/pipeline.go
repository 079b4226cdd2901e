package natspubsub

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pipeline publishes msgs, each with a reply subject of its own under one
// new inbox, and then calls onReply with each message's index and reply as
// the replies arrive, until every published message has one or ctx ends.
// It returns how many messages it published (all, unless publishing one
// failed, with that error) and ctx.Err() when ctx ended first. It starts
// no goroutine: replies queue on a channel subscription that it removes
// before returning. A request/reply round trip for the whole batch is
// what Send (publish acknowledgements) and Ack and Nack (double
// acknowledgements) cost.
func pipeline(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg, onReply func(i int, r *nats.Msg)) (int, error) {
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, len(msgs))
	sub, err := nc.ChanSubscribe(inbox+".*", replies)
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	published := 0
	var pubErr error
	for i, m := range msgs {
		m.Reply = inbox + "." + strconv.Itoa(i)
		if pubErr = nc.PublishMsg(m); pubErr != nil {
			break
		}
		published++
	}
	for answered := 0; answered < published; {
		select {
		case r := <-replies:
			i, err := strconv.Atoi(strings.TrimPrefix(r.Subject, inbox+"."))
			if err != nil || i < 0 || i >= published {
				continue // not a reply of this batch
			}
			answered++
			onReply(i, r)
		case <-ctx.Done():
			return published, ctx.Err()
		}
	}
	return published, pubErr
}

// noResponders reports whether r is the server's status reply for a
// request that nothing subscribed to (no stream captures the subject, or
// the consumer is gone).
func noResponders(r *nats.Msg) bool { return r.Header.Get("Status") == "503" }

// pubAckError returns the error a JetStream publish acknowledgement
// reports, or nil when the stream stored the message (or had it already:
// a duplicate within the window).
func pubAckError(r *nats.Msg) error {
	if noResponders(r) {
		return nats.ErrNoResponders
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	if err := json.Unmarshal(r.Data, &ack); err != nil {
		return jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return ack.Error
	}
	if ack.Stream == "" {
		return jetstream.ErrInvalidJSAck
	}
	return nil
}
