package natspubsub

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by the methods of a Topic or Subscription that was
// closed.
var ErrClosed = errors.New("natspubsub: closed")

// ErrNotConnected is returned at once, before anything is sent, when the
// NATS connection is not connected (the broker is down or unreachable and
// the client is reconnecting). It is retryable.
var ErrNotConnected = errors.New("natspubsub: not connected to NATS")

// PublishError reports messages of a Send that JetStream did not
// acknowledge, by their index in the batch; Err is the first message's
// error. The messages not named were stored.
type PublishError struct {
	Failed []int
	Err    error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("natspubsub: %d of the messages were not stored (first, index %d: %v)", len(e.Failed), e.Failed[0], e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// retryable reports whether err may succeed if tried again: the broker is
// down, unreachable, busy or slow.
func retryable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return false
	}
	for _, target := range []error{
		ErrNotConnected, context.DeadlineExceeded,
		nats.ErrNoResponders, nats.ErrTimeout, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, nats.ErrConnectionDraining, nats.ErrStaleConnection,
		jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout, jetstream.ErrTooManyStalledMsgs,
		jetstream.ErrConnectionClosed, jetstream.ErrServerShutdown, jetstream.ErrNoHeartbeat,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	// The JetStream API answers 503 when it has no quorum or is not yet
	// ready, and 408 on request timeouts.
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	return false
}

// checkConnected returns ErrNotConnected unless nc is connected.
func checkConnected(nc *nats.Conn) error {
	if st := nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w (connection %s)", ErrNotConnected, st)
	}
	return nil
}
