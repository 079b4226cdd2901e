package connectresilience

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/resilience"
)

// Options configure an Interceptor. The zero value works.
type Options struct {
	// Options configure the pipeline (Name defaults to "connect"). Neutral
	// is extended with the business codes (see Interceptor).
	resilience.Options
	// Dependency names the dependency of a call, which keys a
	// resilience.Breakers registry (default: the service part of the
	// procedure, "acme.foo.v1.FooService").
	Dependency func(connect.Spec, connect.Peer) string
	// IdempotencyKeys gives calls to procedures not declared idempotent a
	// fresh Idempotency-Key header (unless they have one), so that they
	// may be retried and hedged. Without it they are tried once.
	IdempotencyKeys bool
}

// Interceptor is a Connect client interceptor (for the Connect, gRPC and
// gRPC-Web protocols) that sends unary calls through a resilience
// pipeline. Codes classify the outcome: Unavailable, ResourceExhausted and
// Aborted are retryable failures (a gRPC "grpc-retry-pushback-ms" trailer
// or a Retry-After header is honoured; a negative or malformed pushback
// means do not retry); Internal, Unknown, DataLoss and
// DeadlineExceeded are failures that are not retried; the other codes
// (InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
// FailedPrecondition, OutOfRange, Unimplemented, Unauthenticated,
// Canceled) are business answers, neutral to breakers. Only procedures
// declared idempotent (IdempotencyNoSideEffects, IdempotencyIdempotent) or
// calls with an Idempotency-Key are retried or hedged. Client streams pass
// the breaker only (see WrapStreamingClient); handlers pass through.
type Interceptor struct {
	p *resilience.Pipeline[connect.AnyResponse]
	o Options
}

// NewInterceptor builds the interceptor's pipeline from policies,
// outermost first (see resilience.Pipeline for the order rules).
func NewInterceptor(o Options, policies ...resilience.Policy) (*Interceptor, error) {
	if o.Name == "" {
		o.Name = "connect"
	}
	userNeutral := o.Neutral
	o.Neutral = func(err error) bool {
		return isBusiness(err) || (userNeutral != nil && userNeutral(err))
	}
	p, err := resilience.New[connect.AnyResponse](o.Options, policies...)
	if err != nil {
		return nil, err
	}
	return &Interceptor{p: p, o: o}, nil
}

// String prints the interceptor's pipeline.
func (i *Interceptor) String() string { return i.p.String() }

var _ connect.Interceptor = (*Interceptor)(nil)

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if !spec.IsClient {
			return next(ctx, req)
		}
		retryable := spec.IdempotencyLevel != connect.IdempotencyUnknown || req.Header().Get(resilience.IdempotencyKeyHeader) != ""
		if !retryable && i.o.IdempotencyKeys {
			req.Header().Set(resilience.IdempotencyKeyHeader, resilience.NewIdempotencyKey())
			retryable = true
		}
		ctx = resilience.WithDependency(ctx, i.dependency(spec, req.Peer()))
		if !retryable {
			ctx = resilience.WithoutHedging(ctx)
		}
		return i.p.Do(ctx, func(ctx context.Context) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			return resp, classify(err, retryable)
		})
	}
}

// WrapStreamingHandler implements connect.Interceptor: handlers pass through.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (i *Interceptor) dependency(spec connect.Spec, peer connect.Peer) string {
	if i.o.Dependency != nil {
		return i.o.Dependency(spec, peer)
	}
	service, _, _ := strings.Cut(strings.TrimPrefix(spec.Procedure, "/"), "/")
	return service
}

func isBusiness(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodeAlreadyExists, connect.CodePermissionDenied,
		connect.CodeFailedPrecondition, connect.CodeOutOfRange, connect.CodeUnimplemented, connect.CodeUnauthenticated,
		connect.CodeCanceled:
		var ce *connect.Error
		return errors.As(err, &ce) // a code the server sent, not a local failure mapped to Unknown
	}
	return false
}

// classify marks errors that must not be retried, and carries a server's
// retry hint.
func classify(err error, retryable bool) error {
	if err == nil {
		return nil
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeAborted:
		if retryable {
			d, refuse := pushback(err)
			if refuse {
				return resilience.Permanent(err)
			}
			if d > 0 {
				return &retryAfterError{err: err, after: d}
			}
			return err
		}
	}
	return resilience.Permanent(err)
}

// pushback reads grpc-retry-pushback-ms or Retry-After from the error's
// metadata; refuse reports a pushback that is negative or malformed, which
// asks the client not to retry at all (gRPC proposal A6).
func pushback(err error) (d time.Duration, refuse bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return 0, false
	}
	if v := ce.Meta().Get("Grpc-Retry-Pushback-Ms"); v != "" {
		d, ok := scaled(v, time.Millisecond)
		return d, !ok
	}
	d, _ = scaled(ce.Meta().Get("Retry-After"), time.Second)
	return d, false
}

// scaled parses a non-negative count of unit; values too large to
// represent become the longest duration (longer than any MaxDelay).
func scaled(v string, unit time.Duration) (time.Duration, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		return math.MaxInt64, true
	}
	if err != nil || n < 0 {
		return 0, false
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }
