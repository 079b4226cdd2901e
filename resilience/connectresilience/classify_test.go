package connectresilience

import (
	"errors"
	"math"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/resilience"
)

func TestClassifyPushback(t *testing.T) {
	withMeta := func(k, v string) error {
		e := connect.NewError(connect.CodeUnavailable, errors.New("busy"))
		e.Meta().Set(k, v)
		return e
	}
	tests := []struct {
		name      string
		err       error
		retryable bool
		after     time.Duration
		permanent bool
	}{
		{"grpc pushback", withMeta("grpc-retry-pushback-ms", "250"), true, 250 * time.Millisecond, false},
		{"retry-after", withMeta("Retry-After", "3"), true, 3 * time.Second, false},
		{"huge pushback", withMeta("grpc-retry-pushback-ms", "99999999999999999"), true, math.MaxInt64, false},
		{"pushback beyond int64", withMeta("grpc-retry-pushback-ms", "99999999999999999999"), true, math.MaxInt64, false},
		{"retry-after beyond int64", withMeta("Retry-After", "99999999999999999999"), true, math.MaxInt64, false},
		// gRPC A6: a negative or unparseable pushback asks the client not to retry.
		{"negative pushback", withMeta("grpc-retry-pushback-ms", "-1"), true, 0, true},
		{"malformed pushback", withMeta("grpc-retry-pushback-ms", "soon"), true, 0, true},
		{"no hint", connect.NewError(connect.CodeUnavailable, errors.New("x")), true, 0, false},
		{"not idempotent", withMeta("grpc-retry-pushback-ms", "250"), false, 0, true},
		{"internal", connect.NewError(connect.CodeInternal, errors.New("x")), true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err, tt.retryable)
			var ra resilience.RetryAfterError
			var after time.Duration
			if errors.As(err, &ra) {
				after = ra.RetryAfter()
			}
			if after != tt.after || resilience.IsPermanent(err) != tt.permanent || !errors.Is(err, tt.err) {
				t.Errorf("classify: after %v, permanent %v; want %v, %v", after, resilience.IsPermanent(err), tt.after, tt.permanent)
			}
		})
	}
}
