package natspubsub

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrClosed, false},
		{fmt.Errorf("natspubsub: %w (connection RECONNECTING)", ErrNotConnected), true},
		{&PublishError{Failed: []int{0}, Err: jetstream.ErrAsyncPublishTimeout}, true},
		{&PublishError{Failed: []int{2}, Err: context.DeadlineExceeded}, true},
		{&PublishError{Failed: []int{0}, Err: context.Canceled}, false},
		{fmt.Errorf("publishing: %w", nats.ErrNoResponders), true},
		{fmt.Errorf("publishing: %w", jetstream.ErrNoStreamResponse), true},
		{fmt.Errorf("publishing: %w", jetstream.ErrTooManyStalledMsgs), true},
		{nats.ErrConnectionClosed, true},
		{nats.ErrTimeout, true},
		{jetstream.ErrNoHeartbeat, true},
		{&jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{&PublishError{Failed: []int{0}, Err: &jetstream.APIError{Code: 503}}, true},
		{nats.ErrMaxPayload, false},
		{errors.New("something else"), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
