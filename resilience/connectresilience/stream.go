package connectresilience

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/resilience"
)

// WrapStreamingClient implements connect.Interceptor. A stream cannot be
// retried or hedged, but it passes the pipeline's circuit breaker: an open
// breaker refuses it (every operation returns the *resilience.OpenError),
// and its outcome is recorded when it ends — a success when it ends
// cleanly, neutral for business codes and the caller's cancellation, a
// failure otherwise. Pipelines without a breaker leave streams alone.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		b := i.p.Breaker(i.dependency(spec, connect.Peer{}))
		if b == nil {
			return next(ctx, spec)
		}
		permit, err := b.Allow()
		if err != nil {
			return &refusedStream{spec: spec, err: err, header: http.Header{}}
		}
		return &stream{StreamingClientConn: next(ctx, spec), ctx: ctx, permit: permit, neutral: i.o.Neutral}
	}
}

// stream reports its outcome to the breaker once, at its first error or
// when its response side ends.
type stream struct {
	connect.StreamingClientConn
	ctx     context.Context
	permit  resilience.Permit
	neutral func(error) bool
	once    sync.Once
}

func (s *stream) report(err error) {
	s.once.Do(func() {
		switch {
		case err == nil || errors.Is(err, io.EOF):
			s.permit.Success()
		case s.ctx.Err() != nil || s.neutral(err):
			s.permit.Neutral()
		default:
			s.permit.Failure()
		}
	})
}

// Send sends a message; a failure other than the end of the stream is reported.
func (s *stream) Send(msg any) error {
	err := s.StreamingClientConn.Send(msg)
	if err != nil && !errors.Is(err, io.EOF) {
		s.report(err)
	}
	return err
}

// Receive receives a message; the end of the stream or an error is reported.
func (s *stream) Receive(msg any) error {
	err := s.StreamingClientConn.Receive(msg)
	if err != nil {
		s.report(err)
	}
	return err
}

// CloseResponse closes the response side, reporting its outcome.
func (s *stream) CloseResponse() error {
	err := s.StreamingClientConn.CloseResponse()
	s.report(err)
	return err
}

// refusedStream is a stream the breaker refused: it never reaches the
// network.
type refusedStream struct {
	spec   connect.Spec
	err    error
	header http.Header
}

func (r *refusedStream) Spec() connect.Spec           { return r.spec }
func (r *refusedStream) Peer() connect.Peer           { return connect.Peer{} }
func (r *refusedStream) Send(any) error               { return r.err }
func (r *refusedStream) RequestHeader() http.Header   { return r.header }
func (r *refusedStream) CloseRequest() error          { return nil }
func (r *refusedStream) Receive(any) error            { return r.err }
func (r *refusedStream) ResponseHeader() http.Header  { return http.Header{} }
func (r *refusedStream) ResponseTrailer() http.Header { return http.Header{} }
func (r *refusedStream) CloseResponse() error         { return nil }
