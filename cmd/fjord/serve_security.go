package main

import (
	"connectrpc.com/connect"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/server"
	"github.com/fjord-data/fjord/telemetry"
)

// securityFlags are serve's TLS and authentication flags.
type securityFlags struct {
	authFile, tlsCert, tlsKey string
}

const securityHelp = `
With --tls-cert and --tls-key the port speaks TLS (HTTP/2 and HTTP/1.1)
instead. With --auth-file every call but /healthz and /readyz needs
"Authorization: Bearer TOKEN", and the file's rules say what each token may
do: read, write or admin on stream-name prefixes or on $all (see the
README). GET /metrics serves Prometheus metrics (read on $all with an auth
file).
`

func (f *securityFlags) register(fl *pflag.FlagSet, getenv func(string) string) {
	fl.StringVar(&f.authFile, "auth-file", getenv("FJORD_AUTH_FILE"), "bearer tokens and their rules, a JSON file (env FJORD_AUTH_FILE)")
	fl.StringVar(&f.tlsCert, "tls-cert", getenv("FJORD_TLS_CERT"), "TLS certificate chain, PEM (env FJORD_TLS_CERT)")
	fl.StringVar(&f.tlsKey, "tls-key", getenv("FJORD_TLS_KEY"), "TLS private key, PEM (env FJORD_TLS_KEY)")
}

// options loads the auth file and the certificate into server options.
func (f *securityFlags) options() (*server.Options, error) {
	var o server.Options
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS certificate: %w", err)
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if f.authFile != "" {
		a, err := server.LoadAuthFile(f.authFile)
		if err != nil {
			return nil, err
		}
		o.Auth = a
	}
	return &o, nil
}

// newServer returns a server for st with opts, Prometheus metrics at
// /metrics, and the trace viewer at /traces/ (every call is traced into
// memory; nothing is exported, so there is nothing to flush at exit).
func newServer(st *eventstore.Store, opts *server.Options) (*server.Server, error) {
	tel, err := telemetry.Setup(&telemetry.TracingOptions{Service: "fjord"})
	if err != nil {
		return nil, err
	}
	tracing, err := tel.ConnectInterceptor()
	if err != nil {
		return nil, err
	}
	m, err := telemetry.NewServerMetrics(tel.Metrics)
	if err != nil {
		return nil, err
	}
	opts.Hooks, opts.Metrics, opts.Traces = m.Hooks(), tel.Metrics.Handler(), tel.Viewer
	opts.Interceptors = append([]connect.Interceptor{tracing}, opts.Interceptors...)
	srv := server.New(st, opts)
	return srv, m.WatchSubscribers(srv.SubscriberStats)
}
