// Package grpcstore is an event store backend that talks to `fjord serve`
// over its Connect API (package api): a Go client that implements the
// driver seam, so that an eventstore.Store works the same over the network
// as in process, and the conformance suite runs against the server.
//
//	b, err := grpcstore.New("http://127.0.0.1:7717", nil)
//	if err != nil { … }
//	s := eventstore.New(b, nil)
//	defer s.Close()
//
// Commit does client-side group commit: the appends of concurrent Commits
// go together in one AppendBatch call (up to Options.MaxBatchCalls calls in
// flight, each bounded by MaxBatchAppends and MaxBatchBytes), and the
// server runs them concurrently into its store's group commit. A lone
// Commit is sent at once, never delayed. Each Commit gets its own result or
// error. When the call carrying an append fails on the way (the network,
// the server going away) or the caller's context ends after it was sent,
// the error wraps driver.ErrUnknownOutcome: retry with the same event IDs
// to settle it.
//
// The server's status codes come back as the driver's errors: a wrong
// expected version is a *driver.ConflictError, reused event IDs a
// *driver.IdempotencyError, NOT_FOUND driver.ErrStreamNotFound, and a
// closed server store driver.ErrClosed. Other failures (the network, a
// request the server rejects) are returned wrapped, with the
// *connect.Error inside.
package grpcstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/api/fjord/eventstore/v1/eventstorev1connect"
	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/internal/headwatch"
)

// Options configure a Store. The zero value works.
type Options struct {
	// HTTPClient makes the calls. nil: the Store's own client, speaking
	// unencrypted HTTP/2 to http:// URLs and HTTP/2 or HTTP/1.1 over TLS
	// to https:// URLs; Close closes its connections.
	HTTPClient connect.HTTPClient
	// RootCAs are the certificate authorities that the Store's own client
	// trusts for https:// URLs; nil means the system's.
	RootCAs *x509.CertPool
	// GRPC uses the gRPC protocol instead of Connect's (both binary).
	GRPC bool
	// ReadMaxBytes bounds one response message (default 64 MiB).
	ReadMaxBytes int
	// ReconnectDelay is the longest wait between two attempts to reopen
	// the head watch after its connection drops (default 2s; attempts
	// start at a 20th of it and double).
	ReconnectDelay time.Duration
	// Logger receives reconnection messages; nil discards them.
	Logger *slog.Logger
	// MaxBatchAppends and MaxBatchBytes bound one AppendBatch call: the
	// Commits queued while earlier calls are in flight go together, up to
	// this many appends (default 256; the server takes up to 1000) and this
	// many encoded bytes (default 4 MiB; a larger single append goes
	// alone).
	MaxBatchAppends, MaxBatchBytes int
	// MaxBatchCalls is how many AppendBatch calls may be in flight at once
	// (default 4).
	MaxBatchCalls int
	// Token is sent as "Authorization: Bearer Token" on every call, for a
	// server started with an auth file. Empty sends none.
	Token string
}

// Store is a backend over a remote event store. It is safe for concurrent
// use.
type Store struct {
	client eventstorev1connect.EventStoreServiceClient
	own    *http.Client // nil when the caller gave the client
	opts   Options

	closing context.Context // ends on Close
	close   context.CancelFunc
	closed  atomic.Bool

	batch *batcher // groups Commits into AppendBatch calls

	head      headwatch.Head // as last reported by the head watch
	watchOnce sync.Once
	watchDone chan struct{} // closed when the watch goroutine ends
}

var (
	_ driver.Backend = (*Store)(nil)
	_ driver.Watcher = (*Store)(nil)
)

// New returns a Store that talks to the server at baseURL, for example
// "http://127.0.0.1:7717". It connects lazily: New makes no call. opts may
// be nil.
func New(baseURL string, opts *Options) (*Store, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("grpcstore: invalid server URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	s := &Store{watchDone: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.ReadMaxBytes <= 0 {
		s.opts.ReadMaxBytes = 64 << 20
	}
	if s.opts.ReconnectDelay <= 0 {
		s.opts.ReconnectDelay = 2 * time.Second
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if s.opts.MaxBatchAppends <= 0 {
		s.opts.MaxBatchAppends = 256
	}
	if s.opts.MaxBatchBytes <= 0 {
		s.opts.MaxBatchBytes = 4 << 20
	}
	if s.opts.MaxBatchCalls <= 0 {
		s.opts.MaxBatchCalls = 4
	}
	hc := s.opts.HTTPClient
	if hc == nil {
		s.own = newHTTPClient(u.Scheme == "https", s.opts.RootCAs)
		hc = s.own
	}
	copts := []connect.ClientOption{connect.WithReadMaxBytes(s.opts.ReadMaxBytes)}
	if s.opts.GRPC {
		copts = append(copts, connect.WithGRPC())
	}
	if s.opts.Token != "" {
		copts = append(copts, connect.WithInterceptors(bearer("Bearer "+s.opts.Token)))
	}
	s.client = eventstorev1connect.NewEventStoreServiceClient(hc, baseURL, copts...)
	s.closing, s.close = context.WithCancel(context.Background())
	s.batch = newBatcher(s)
	return s, nil
}

func newHTTPClient(useTLS bool, roots *x509.CertPool) *http.Client {
	var p http.Protocols
	if useTLS {
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Protocols = &p
	if roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}
}

// Close implements driver.Backend: calls in flight end, later calls and
// head waits return driver.ErrClosed, and the Store's own connections
// close. It does not close the server's store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.close()
	s.batch.close()
	s.watchOnce.Do(func() { close(s.watchDone) }) // never started: nothing to wait for
	<-s.watchDone
	s.head.Close(driver.ErrClosed)
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}

// callCtx returns ctx, also cancelled when the Store closes.
func (s *Store) callCtx(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	return ctx, func() { stop(); cancel() }
}

// ReadStream implements driver.Backend. It reads page by page as the
// caller consumes the records.
func (s *Store) ReadStream(ctx context.Context, q driver.StreamQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		req := &esv1.ReadStreamRequest{Stream: q.Stream, From: q.From, Backwards: q.Backwards}
		s.pages(ctx, q.Limit, yield, func(ctx context.Context, limit uint32) ([]*esv1.RecordedEvent, bool, error) {
			req.Limit = limit
			res, err := s.client.ReadStream(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, false, err
			}
			req.From = res.Msg.GetNextFrom()
			return res.Msg.GetEvents(), res.Msg.GetMore(), nil
		})
	}
}

// ReadAll implements driver.Backend. The first page fixes Until (when the
// query leaves it 0) so that later pages read the same log.
func (s *Store) ReadAll(ctx context.Context, q driver.AllQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		req := &esv1.ReadAllRequest{From: q.From, Until: q.Until, Backwards: q.Backwards,
			Filter: &esv1.Filter{StreamPrefix: q.Filter.StreamPrefix, Category: q.Filter.Category, EventTypes: q.Filter.EventTypes}}
		s.pages(ctx, q.Limit, yield, func(ctx context.Context, limit uint32) ([]*esv1.RecordedEvent, bool, error) {
			req.Limit = limit
			res, err := s.client.ReadAll(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, false, err
			}
			req.From, req.Until = res.Msg.GetNextFrom(), res.Msg.GetUntil()
			return res.Msg.GetEvents(), res.Msg.GetMore(), nil
		})
	}
}

// pages yields the records of successive pages fetched by page, until a
// page says there is no more, limit records were yielded (0: no limit), or
// yield stops.
func (s *Store) pages(ctx context.Context, limit int, yield func(driver.Record, error) bool,
	page func(ctx context.Context, limit uint32) ([]*esv1.RecordedEvent, bool, error)) {
	if s.closed.Load() {
		yield(driver.Record{}, driver.ErrClosed)
		return
	}
	cctx, done := s.callCtx(ctx)
	defer done()
	left := limit
	for {
		ask := uint32(0)
		if limit > 0 {
			ask = uint32(min(left, math.MaxUint32))
		}
		evs, more, err := page(cctx, ask)
		if err != nil {
			yield(driver.Record{}, s.mapError(ctx, err))
			return
		}
		for _, e := range evs {
			r, err := recordFromProto(e)
			if err != nil {
				yield(driver.Record{}, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		left -= len(evs)
		if !more || (limit > 0 && left <= 0) {
			return
		}
	}
}

// StreamInfo implements driver.Backend.
func (s *Store) StreamInfo(ctx context.Context, stream string) (driver.StreamInfo, error) {
	if s.closed.Load() {
		return driver.StreamInfo{}, driver.ErrClosed
	}
	cctx, done := s.callCtx(ctx)
	defer done()
	res, err := s.client.StreamInfo(cctx, connect.NewRequest(&esv1.StreamInfoRequest{Stream: stream}))
	if err != nil {
		return driver.StreamInfo{}, s.mapError(ctx, err)
	}
	m := res.Msg
	return driver.StreamInfo{Version: m.GetVersion(), Position: m.GetPosition(),
		Created: m.GetCreated().AsTime(), Updated: m.GetUpdated().AsTime()}, nil
}

// Head implements driver.Backend.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	cctx, done := s.callCtx(ctx)
	defer done()
	res, err := s.client.Head(cctx, connect.NewRequest(&esv1.HeadRequest{}))
	if err != nil {
		return 0, s.mapError(ctx, err)
	}
	return res.Msg.GetPosition(), nil
}

// mapError turns a call's error into the driver's: the caller's context
// error when ctx ended, ErrClosed after Close, and the server's status
// codes as described in the package comment.
func (s *Store) mapError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if s.closed.Load() {
		return driver.ErrClosed
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("grpcstore: %w", err)
	}
	switch ce.Code() {
	case connect.CodeFailedPrecondition, connect.CodeAborted:
		if d, ok := detail[*esv1.WrongExpectedVersion](ce); ok {
			return &driver.ConflictError{Index: int(d.GetIndex()), Actual: d.GetActual()}
		}
	case connect.CodeAlreadyExists:
		if d, ok := detail[*esv1.IdempotencyMismatch](ce); ok {
			return &driver.IdempotencyError{Committed: int(d.GetCommitted()), Total: int(d.GetTotal()), Reason: d.GetReason()}
		}
	case connect.CodeNotFound:
		return fmt.Errorf("grpcstore: %s: %w", ce.Message(), driver.ErrStreamNotFound)
	case connect.CodeUnavailable:
		if _, ok := detail[*esv1.StoreClosed](ce); ok {
			return fmt.Errorf("grpcstore: the server's store is closed: %w", driver.ErrClosed)
		}
	case connect.CodeCanceled:
		return fmt.Errorf("grpcstore: %w: %w", context.Canceled, err)
	case connect.CodeDeadlineExceeded:
		return fmt.Errorf("grpcstore: %w: %w", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("grpcstore: %w", err)
}

// detail returns the first error detail of type T.
func detail[T any](ce *connect.Error) (T, bool) {
	var zero T
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if t, ok := v.(T); ok {
			return t, true
		}
	}
	return zero, false
}

// bearer sets the Authorization header of every call to its value.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
