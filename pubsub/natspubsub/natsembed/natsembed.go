package natsembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure an embedded server. The zero value starts an
// in-process-only server with JetStream in a temporary directory that
// Close removes.
type Options struct {
	// Dir holds the JetStream store (streams, consumers, messages). A
	// server started again on the same Dir finds what was stored there,
	// acknowledged or not. "" is a new temporary directory, removed by
	// Close.
	Dir string
	// Listen is a TCP address, HOST:PORT, for clients outside the
	// process. "" opens no port: only Connect reaches the server. A port
	// of 0 takes a free one (see Server.ClientURL).
	Listen string
	// Name is the server's name (its JetStream identity); "" is "fjord".
	Name string
	// MaxStore and MaxMemory limit JetStream's file and memory storage in
	// bytes; 0 lets the server size them from the disk and memory it
	// finds.
	MaxStore, MaxMemory int64
	// StartTimeout bounds how long Start waits for the server to be
	// ready; 0 is 10 seconds.
	StartTimeout time.Duration
	// Logger receives the server's warnings and errors, and its notices
	// (the start-up banner among them) at debug level; nil discards them.
	Logger *slog.Logger
}

// ErrStart is matched by the errors of a server that did not become
// ready.
var ErrStart = errors.New("natsembed: the NATS server did not start")

// Server is an embedded NATS server with JetStream. Its methods are safe
// for concurrent use.
type Server struct {
	ns      *server.Server
	dir     string
	tempDir string // removed by Close; "" when Options.Dir was given
	logs    *logAdapter
	close   sync.Once
	err     error // of Close
}

// Start starts a server and returns once it accepts connections with
// JetStream enabled, or ctx ends, or Options.StartTimeout passes. opts
// may be nil. The caller closes the server.
func Start(ctx context.Context, opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{logs: &logAdapter{logger: opts.Logger}}
	sopts, err := s.serverOptions(opts)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("%w: %v", ErrStart, err)
	}
	s.ns = ns
	ns.SetLoggerV2(s.logs, false, false, false)
	ns.Start()
	if err := s.waitReady(ctx, cmpOr(opts.StartTimeout, 10*time.Second)); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Server) serverOptions(opts *Options) (*server.Options, error) {
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "natsembed-")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrStart, err)
		}
		dir, s.tempDir = tmp, tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: creating its directory: %v", ErrStart, err)
	}
	s.dir = dir
	so := &server.Options{
		ServerName:         cmpOr(opts.Name, "fjord"),
		JetStream:          true,
		StoreDir:           dir,
		JetStreamMaxStore:  opts.MaxStore,
		JetStreamMaxMemory: opts.MaxMemory,
		NoSigs:             true,
		DontListen:         opts.Listen == "",
	}
	if opts.Listen != "" {
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			s.removeTemp()
			return nil, fmt.Errorf("%w: invalid listen address %q: %v", ErrStart, opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			s.removeTemp()
			return nil, fmt.Errorf("%w: invalid port in listen address %q", ErrStart, opts.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT // the server reads 0 as its default port, 4222
		}
		so.Host, so.Port = host, p
	}
	if opts.MaxStore == 0 {
		so.JetStreamMaxStore = -1
	}
	if opts.MaxMemory == 0 {
		so.JetStreamMaxMemory = -1
	}
	return so, nil
}

// waitReady waits for the server to accept connections and to have
// JetStream, polling so that ctx is honoured.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !s.ns.ReadyForConnections(50 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrStart, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %v%s", ErrStart, timeout, s.logs.lastError())
		}
	}
	if !s.ns.JetStreamEnabled() {
		return fmt.Errorf("%w: JetStream is not enabled%s", ErrStart, s.logs.lastError())
	}
	return nil
}

// ClientURL returns the URL clients outside the process connect to, such
// as nats://127.0.0.1:41234, or "" when the server listens on no port.
func (s *Server) ClientURL() string {
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return ""
	}
	return "nats://" + addr.String()
}

// Connect returns a new in-process connection to the server; opts are
// added to the in-process option. The caller closes the connection.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("fjord")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connecting in process: %w", err)
	}
	return nc, nil
}

// Dir returns the directory that holds the JetStream store.
func (s *Server) Dir() string { return s.dir }

// Run blocks until ctx ends and then closes the server, returning nil; it
// returns an error at once if the server shuts down before that. It suits
// an errgroup that owns the server's lifetime.
func (s *Server) Run(ctx context.Context) error {
	down := make(chan struct{})
	go func() { // ends when the server has shut down, which Close ensures
		s.ns.WaitForShutdown()
		close(down)
	}()
	select {
	case <-ctx.Done():
		return s.Close()
	case <-down:
		return fmt.Errorf("natsembed: the NATS server shut down%s", s.logs.lastError())
	}
}

// Close shuts the server down, closing its clients' connections, waits
// until its goroutines have ended, and removes the store when Start made
// a temporary directory for it. It returns the same result every time.
func (s *Server) Close() error {
	s.close.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.err = s.removeTemp()
	})
	return s.err
}

func (s *Server) removeTemp() error {
	if s.tempDir == "" {
		return nil
	}
	if err := os.RemoveAll(s.tempDir); err != nil {
		return fmt.Errorf("natsembed: removing the temporary store: %w", err)
	}
	return nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// logAdapter passes the server's log to a *slog.Logger and keeps its last
// error for Start's error message.
type logAdapter struct {
	logger *slog.Logger
	mu     struct {
		sync.Mutex
		lastError string
	}
}

func (l *logAdapter) log(level slog.Level, format string, v []any) {
	if l.logger != nil {
		l.logger.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *logAdapter) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *logAdapter) Debugf(format string, v ...any)  {}
func (l *logAdapter) Tracef(format string, v ...any)  {}

// Fatalf logs an error: an embedded server never exits the process.
func (l *logAdapter) Fatalf(format string, v ...any) { l.Errorf(format, v...) }

func (l *logAdapter) Errorf(format string, v ...any) {
	l.mu.Lock()
	l.mu.lastError = fmt.Sprintf(format, v...)
	l.mu.Unlock()
	l.log(slog.LevelError, format, v)
}

func (l *logAdapter) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.lastError == "" {
		return ""
	}
	return ": " + l.mu.lastError
}
