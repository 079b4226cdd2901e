package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

type serveFlags struct {
	listen    string
	insecure  bool
	logFormat string
	security  securityFlags // serve_security.go
	nats      natsFlags     // serve_nats.go
	sql       serveSQLFlags // serve_sql.go
}

func newServeCmd(a *app) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the event store over gRPC, Connect/JSON and Server-Sent Events",
		Long: `Serve the event store in --data on --listen until interrupted (SIGINT or
SIGTERM), then shut down gracefully: stop accepting, end subscriptions,
finish requests in flight, and close the store, so that every append
acknowledged to a client is kept.

One port speaks gRPC, gRPC-Web and Connect (binary or JSON) over HTTP/1.1
and unencrypted HTTP/2; GET /v1/subscribe streams Server-Sent Events;
GET /healthz and GET /readyz report health.
` + serveSQLHelp + securityHelp + `
Off loopback, serve refuses to start without TLS and an auth file, unless
--insecure is given.

With --postgres (env FJORD_POSTGRES) the store is in that PostgreSQL
database, in --schema, instead of --data; several servers may serve one
schema, and they share one gapless event log.

For messaging, serve runs an embedded NATS JetStream server with its
store in <data>/nats, reachable in process only unless --nats-listen is
given; --nats URL uses an external server instead, --nats off none.`,
		Example: `  fjord serve
  fjord serve --listen 127.0.0.1:9000 --data /var/lib/fjord
  fjord serve --postgres postgres://app@db/app --schema orders
  curl -s localhost:7717/fjord.eventstore.v1.EventStoreService/Head -H 'Content-Type: application/json' -d '{}'
  curl -sN localhost:7717/v1/sql -d 'SELECT * FROM totals EMIT CHANGES'`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runServe(cmd, f)
		},
	}
	def := a.getenv("FJORD_LISTEN")
	if def == "" {
		def = "127.0.0.1:7717"
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", def, "address to listen on, HOST:PORT (env FJORD_LISTEN)")
	fl.BoolVar(&f.insecure, "insecure", false, "allow listening on a non-loopback address without TLS or authentication")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on standard error: text or json")
	f.security.register(fl, a.getenv)
	f.nats.register(fl, a.getenv)
	f.sql.register(fl, a.getenv)
	addPostgresFlags(fl, a)
	return cmd
}

func (a *app) runServe(cmd *cobra.Command, f serveFlags) (err error) {
	if a.serverURL != "" {
		return usagef(cmd, "serve works on --data; --server is for the commands that use a served store")
	}
	sopts, err := f.security.options()
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	if err := checkLoopback(f.listen, sopts.TLSConfig != nil && sopts.Auth != nil, f.insecure); err != nil {
		return usagef(cmd, "%v", err)
	}
	var logger *slog.Logger
	switch f.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(a.stderr, nil))
	case "json":
		logger = slog.New(slog.NewJSONHandler(a.stderr, nil))
	default:
		return usagef(cmd, "invalid --log-format %q: want text or json", f.logFormat)
	}
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the event store: %w", cerr))
		}
		logger.Info("event store closed", a.storeAttrs()...)
	}()
	engine, err := f.sql.open(st, a.dataDir, logger)
	if err != nil {
		return err
	}
	if engine != nil {
		// After the server and Run stopped, before the store closes.
		defer func() {
			if cerr := engine.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("closing streaming SQL: %w", cerr))
			}
		}()
	}
	nats, err := startNATS(cmd.Context(), f.nats, a.dataDir, f.insecure, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, nats.Close()) }()
	listen := a.listen
	if listen == nil {
		listen = net.Listen
	}
	ln, err := listen("tcp", f.listen)
	if err != nil {
		return err
	}
	logger.Info("serving the event store", append([]any{"addr", ln.Addr().String()}, a.storeAttrs()...)...)
	sopts.Logger = logger
	sopts.SQL = engine
	srv, err := newServer(st, sopts)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(cmd.Context())
	g.Go(func() error { return srv.Serve(ctx, ln) })
	g.Go(func() error { return nats.Run(ctx) })
	g.Go(func() error { return runSQL(ctx, engine) })
	return g.Wait()
}

// checkLoopback refuses addresses that other machines could reach, unless
// the server is secure (TLS and an auth file) or insecure is set.
func checkLoopback(addr string, secure, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid --listen %q: %v", addr, err)
	}
	if secure || insecure || host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address: give --tls-cert, --tls-key and --auth-file, or --insecure to serve on it without them", addr)
}
