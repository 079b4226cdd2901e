package rabbitpubsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrClosed is returned by calls on a Topic, Subscription or Conn that was
// closed with Close. It is not retryable.
var ErrClosed = errors.New("rabbitpubsub: closed")

// ErrUnroutable is matched by every *UnroutableError.
var ErrUnroutable = errors.New("rabbitpubsub: message unroutable")

// UnroutableError reports messages that the broker returned because no
// queue is bound to the exchange for their routing key (they were published
// with the mandatory flag). It is not retryable: a binding is missing.
type UnroutableError struct {
	Exchange   string
	RoutingKey string
	// IDs are the CloudEvents ids of the returned messages.
	IDs       []string
	ReplyCode uint16
	ReplyText string
}

func (e *UnroutableError) Error() string {
	return fmt.Sprintf("rabbitpubsub: %d message(s) unroutable: exchange %q has no queue bound for routing key %q (%d %s; ids %s)",
		len(e.IDs), e.Exchange, e.RoutingKey, e.ReplyCode, e.ReplyText, strings.Join(e.IDs, ", "))
}

// Is makes errors.Is(err, ErrUnroutable) true.
func (e *UnroutableError) Is(target error) bool { return target == ErrUnroutable }

// ErrTooLarge is matched by the error of a Send with a message AMQP 0-9-1
// cannot carry: a routing key or datacontenttype longer than 255 bytes, or
// attributes that do not fit in one frame of the connection's negotiated
// frame_max (RabbitMQ's default is 128 KiB). Nothing of that Send was
// published. It is not retryable.
var ErrTooLarge = errors.New("rabbitpubsub: message too large for AMQP 0-9-1")

// ErrNacked means the broker refused a publish (a negative publisher
// confirm: an internal error, or a queue at its length limit with
// overflow=reject-publish). It is retryable.
var ErrNacked = errors.New("rabbitpubsub: broker refused the publish (negative confirm)")

// ErrStaleAck means a message was acknowledged on a channel that has since
// closed: the broker has already put it back on the queue and will deliver
// it again. It is not retryable.
var ErrStaleAck = errors.New("rabbitpubsub: the message's channel closed before the ack; the broker will redeliver it")

// ConnectionError is a failure to reach the broker or a lost connection or
// channel. It is retryable: the next call dials or opens a channel again.
type ConnectionError struct {
	Op  string // "dial", "open channel", "publish", "confirm", "receive"…
	Err error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("rabbitpubsub: %s: broker connection: %v", e.Op, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// isRetryable is the classification shared by Topic and Subscription.
func isRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrUnroutable) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, ErrStaleAck) || errors.Is(err, context.Canceled) {
		return false
	}
	var ce *ConnectionError
	if errors.As(err, &ce) || errors.Is(err, ErrNacked) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		// These codes mean the connection or channel is gone or the broker
		// is short of resources; the others (not found, access refused,
		// precondition failed…) name a mistake that retrying repeats.
		switch ae.Code {
		case amqp.ConnectionForced, amqp.FrameError, amqp.ChannelError, amqp.UnexpectedFrame,
			amqp.ResourceError, amqp.InternalError:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, amqp.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne)
}
