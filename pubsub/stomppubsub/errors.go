package stomppubsub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/go-stomp/stomp/v3"
)

// ErrClosed is returned by calls on a Topic or Subscription that was
// closed with Close. It is not retryable.
var ErrClosed = errors.New("stomppubsub: closed")

// ErrStaleAck means a message was acknowledged after its subscription was
// replaced (after a Nack or a lost connection): the broker has already
// put it back and will deliver it again. It is not retryable.
var ErrStaleAck = errors.New("stomppubsub: the message's subscription ended before the ack; the broker will redeliver it")

// ErrTooLarge is matched by the error of a Send with a message whose
// header line is longer than TopicOptions.MaxHeaderLength. It is not
// retryable.
var ErrTooLarge = errors.New("stomppubsub: message header too long for the broker")

// ConnectionError is a failure to reach the broker or a lost connection.
// It is retryable: the next call dials again.
type ConnectionError struct {
	Op  string
	Err error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("stomppubsub: %s: broker connection: %v", e.Op, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// BrokerError is an ERROR frame from the broker (an unknown or forbidden
// destination, a refused login…). It is not retryable.
type BrokerError struct {
	Op      string
	Message string // the ERROR frame's message header
	Body    string
}

func (e *BrokerError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("stomppubsub: %s: broker error: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("stomppubsub: %s: broker error: %s: %s", e.Op, e.Message, e.Body)
}

// classify turns an error of a go-stomp call into a *ConnectionError or a
// *BrokerError, keeping context errors visible to errors.Is.
func classify(op string, err error) error {
	var se *stomp.Error
	if errors.As(err, &se) && se.Frame != nil && !connectionLost(se.Message) {
		return &BrokerError{Op: op, Message: se.Message, Body: string(se.Frame.Body)}
	}
	return &ConnectionError{Op: op, Err: err}
}

// connectionLost recognizes the ERROR frames go-stomp makes up itself
// when its connection ends (the broker sent no such frame).
func connectionLost(msg string) bool {
	switch msg {
	case "connection closed", "write channel closed", "channel read failed":
		return true
	}
	return false
}

func isRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrStaleAck) || errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled) {
		return false
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return false
	}
	var ce *ConnectionError
	var ne net.Error
	return errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, stomp.ErrClosedUnexpectedly) || errors.Is(err, stomp.ErrAlreadyClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne)
}
