package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/api/fjord/eventstore/v1/eventstorev1connect"
	"github.com/fjord-data/fjord/api/fjord/streamsql/v1/streamsqlv1connect"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql"
)

// Options configure a Server. The zero value works.
type Options struct {
	// MaxRequestBytes bounds the size of one request message (default:
	// twice the store's MaxAppendSize, room for JSON's base64).
	MaxRequestBytes int
	// MaxBatchAppends bounds the appends of one AppendBatch call (default
	// 1000); their total size is bounded by MaxRequestBytes.
	MaxBatchAppends int
	// PageEvents and PageBytes bound one page of ReadStream and ReadAll
	// (defaults 1000 events, 4 MiB; a page holds at least one event). They
	// also cap a subscription's page size.
	PageEvents, PageBytes int
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends (default 30s).
	ShutdownTimeout time.Duration
	// Logger receives request errors and lifecycle messages; nil discards
	// them.
	Logger *slog.Logger
	// TLSConfig, when set, makes Serve speak TLS (HTTP/2 and HTTP/1.1,
	// negotiated by ALPN) instead of plaintext HTTP/1.1 and h2c. It needs a
	// certificate (Certificates or GetCertificate).
	TLSConfig *tls.Config
	// Hooks observe appends, reads and subscriptions, for metrics.
	Hooks Hooks
	// Metrics, when set, is served at GET /metrics (with Auth, to tokens
	// that may read $all), for example telemetry's Prometheus handler.
	Metrics http.Handler
	// Traces, when set, is served under /traces/ (with Auth, to tokens that
	// may read $all), for example telemetry's trace viewer.
	Traces http.Handler
	// Interceptors run around every Connect, gRPC and gRPC-Web call,
	// outermost first and before the server's own (logging, auth): tracing,
	// for example.
	Interceptors []connect.Interceptor
	// Auth, when set, requires a bearer token on every call but /healthz
	// and /readyz, and checks its rules (see ParseAuth): nil serves
	// everyone everything.
	Auth *Auth
	// SQL, when set, is served as fjord.streamsql.v1.StreamSQLService and
	// at POST /v1/sql; its owner runs and closes it. Without it those
	// calls fail with UNAVAILABLE.
	SQL *streamsql.Engine
	// MaxStatementBytes bounds one SQL statement (default 64 KiB).
	MaxStatementBytes int
	// MaxSQLQueries bounds the SQL queries (push and pull) running at
	// once; more fail with RESOURCE_EXHAUSTED (default 64).
	MaxSQLQueries int
}

func (o *Options) withDefaults(st *eventstore.Store) *Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.MaxRequestBytes <= 0 {
		out.MaxRequestBytes = 2 * st.Limits().MaxAppendSize
	}
	if out.MaxBatchAppends <= 0 {
		out.MaxBatchAppends = 1000
	}
	if out.PageEvents <= 0 {
		out.PageEvents = 1000
	}
	if out.PageBytes <= 0 {
		out.PageBytes = 4 << 20
	}
	if out.ShutdownTimeout <= 0 {
		out.ShutdownTimeout = 30 * time.Second
	}
	if out.MaxStatementBytes <= 0 {
		out.MaxStatementBytes = 64 << 10
	}
	if out.MaxSQLQueries <= 0 {
		out.MaxSQLQueries = 64
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return &out
}

// Server serves an event store over HTTP. It is safe for concurrent use.
// It never closes the store: its owner does, after Serve returns.
type Server struct {
	store      *eventstore.Store
	opts       *Options
	drain      context.Context
	startDrain context.CancelFunc
	draining   atomic.Bool
	handler    http.Handler
	subs       *subscribers
}

// New returns a Server for st. opts may be nil.
func New(st *eventstore.Store, opts *Options) *Server {
	s := &Server{store: st, opts: opts.withDefaults(st)}
	s.subs = &subscribers{hooks: &s.opts.Hooks}
	s.drain, s.startDrain = context.WithCancel(context.Background())
	z := &authorizer{auth: s.opts.Auth, now: time.Now}
	svc := &service{store: st, opts: s.opts, drain: s.drain, auth: z, subs: s.subs}
	mux := http.NewServeMux()
	path, h := eventstorev1connect.NewEventStoreServiceHandler(svc,
		connect.WithCodec(strictJSON{"json"}),
		connect.WithCodec(strictJSON{"json; charset=utf-8"}),
		connect.WithReadMaxBytes(s.opts.MaxRequestBytes),
		connect.WithCompressMinBytes(compressMinBytes),
		connect.WithInterceptors(s.opts.Interceptors...),
		connect.WithInterceptors(s.logErrors(), &authInterceptor{z}),
	)
	mux.Handle(path, h)
	sqlSvc := &sqlService{engine: s.opts.SQL, opts: s.opts, drain: s.drain, auth: z, slots: make(chan struct{}, s.opts.MaxSQLQueries)}
	path, h = streamsqlv1connect.NewStreamSQLServiceHandler(sqlSvc,
		connect.WithCodec(strictJSON{"json"}),
		connect.WithCodec(strictJSON{"json; charset=utf-8"}),
		connect.WithReadMaxBytes(s.opts.MaxStatementBytes+4<<10),
		connect.WithCompressMinBytes(compressMinBytes),
		connect.WithInterceptors(s.opts.Interceptors...),
		connect.WithInterceptors(s.logErrors(), &authInterceptor{z}),
	)
	mux.Handle(path, h)
	mux.Handle("POST /v1/sql", &sqlHTTP{svc: sqlSvc})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /v1/subscribe", &sseHandler{store: st, opts: s.opts, drain: s.drain, auth: z, subs: s.subs})
	if s.opts.Metrics != nil {
		mux.Handle("GET /metrics", z.protect(PermRead, AllStreams, s.opts.Metrics))
	}
	if s.opts.Traces != nil {
		mux.Handle("GET /traces/", z.protect(PermRead, AllStreams, http.StripPrefix("/traces", s.opts.Traces)))
	}
	s.handler = mux
	return s
}

// Handler returns the server's HTTP handler: the Connect services at
// /fjord.eventstore.v1.EventStoreService/ and
// /fjord.streamsql.v1.StreamSQLService/, GET /healthz, GET /readyz, the
// Server-Sent Events endpoint GET /v1/subscribe and POST /v1/sql.
func (s *Server) Handler() http.Handler { return s.handler }

// Drain starts shutting down: /readyz fails, and subscriptions, head
// watches, SSE streams and SQL queries end (with UNAVAILABLE), so that clients
// reconnect elsewhere. Requests in flight are not interrupted.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.startDrain()
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if _, err := s.store.Head(r.Context()); err != nil {
		http.Error(w, "store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// Serve serves on ln (HTTP/1.1 and unencrypted HTTP/2, so gRPC, gRPC-Web
// and Connect all work without TLS; or with Options.TLSConfig, HTTP/2 and
// HTTP/1.1 over TLS) until ctx ends, then shuts down
// gracefully: it drains, stops accepting, and waits up to ShutdownTimeout
// for requests in flight, so that every append acknowledged to a client has
// been committed. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := NewHTTPServer(s.handler)
	hs.ErrorLog = slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn)
	errc := make(chan error, 1)
	if s.opts.TLSConfig != nil {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		hs.Protocols = &p
		hs.TLSConfig = s.opts.TLSConfig.Clone()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		s.Drain()
		return err
	case <-ctx.Done():
	}
	s.opts.Logger.Info("shutting down", "timeout", s.opts.ShutdownTimeout)
	s.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		hs.Close()
	}
	return err
}

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1 and
// unencrypted HTTP/2 (h2c), with header timeouts set.
func NewHTTPServer(h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 10 * time.Second}
}

// logErrors logs failed calls at a level fitting their code.
func (s *Server) logErrors() connect.Interceptor {
	return &errorLogger{log: s.opts.Logger}
}

type errorLogger struct{ log *slog.Logger }

func (l *errorLogger) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err != nil {
			l.logged(ctx, req.Spec().Procedure, err)
		}
		return res, err
	}
}

func (l *errorLogger) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *errorLogger) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		if err != nil {
			l.logged(ctx, conn.Spec().Procedure, err)
		}
		return err
	}
}

func (l *errorLogger) logged(ctx context.Context, procedure string, err error) {
	level := slog.LevelDebug
	if c := connect.CodeOf(err); c == connect.CodeInternal || c == connect.CodeDataLoss || c == connect.CodeUnknown {
		level = slog.LevelError
	}
	l.log.Log(ctx, level, "call failed", "procedure", procedure, "code", connect.CodeOf(err).String(), "err", err)
}

// compressMinBytes is the least size of a response worth compressing:
// gzip's fixed cost dominates a small Append or Head response.
const compressMinBytes = 4 << 10
