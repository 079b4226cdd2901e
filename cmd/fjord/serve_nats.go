package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

// natsFlags choose the NATS JetStream server that serve makes available
// for messaging: an embedded one by default, an external one, or none.
type natsFlags struct {
	url    string // --nats: "" embedded, "off" none, else an external server's URL
	listen string // --nats-listen: the embedded server's TCP address, "" none
}

func (f *natsFlags) register(fl *pflag.FlagSet, getenv func(string) string) {
	fl.StringVar(&f.url, "nats", getenv("FJORD_NATS"),
		"NATS JetStream server URL for messaging, or \"off\"; default: an embedded server with its store in <data>/nats (env FJORD_NATS)")
	fl.StringVar(&f.listen, "nats-listen", getenv("FJORD_NATS_LISTEN"),
		"let clients outside the process reach the embedded NATS server at this address, HOST:PORT (default: in process only) (env FJORD_NATS_LISTEN)")
}

// natsPart is serve's NATS: Run keeps it until ctx ends, then releases it.
type natsPart struct {
	server *natsembed.Server // embedded, or nil
	lock   *os.File          // the embedded store's lock, with server
	conn   *nats.Conn        // connection to an external server, or nil
}

// startNATS starts the embedded server in dataDir/nats, or checks that the
// external server answers with JetStream; it returns nil when f says off.
// The embedded server has no authentication, so it listens off loopback
// only when insecure is set.
func startNATS(ctx context.Context, f natsFlags, dataDir string, insecure bool, logger *slog.Logger) (*natsPart, error) {
	if f.listen != "" && checkLoopback(f.listen, false, insecure) != nil {
		return nil, fmt.Errorf("--nats-listen %q is not a loopback address, and the embedded NATS server has no authentication: give --insecure to listen there anyway", f.listen)
	}
	switch {
	case f.url == "off":
		if f.listen != "" {
			return nil, errors.New("--nats-listen needs the embedded NATS server, not --nats off")
		}
		return nil, nil
	case f.url != "":
		if f.listen != "" {
			return nil, errors.New("--nats-listen is for the embedded NATS server; --nats names an external one")
		}
		return connectNATS(ctx, f.url, logger)
	}
	dir := filepath.Join(dataDir, "nats")
	lock, err := lockNATSStore(dir)
	if err != nil {
		return nil, err
	}
	srv, err := natsembed.Start(ctx, &natsembed.Options{Dir: dir, Listen: f.listen, Logger: logger.With("component", "nats")})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("starting the embedded NATS server in %s: %w", dir, err)
	}
	attrs := []any{"dir", dir}
	if url := srv.ClientURL(); url != "" {
		attrs = append(attrs, "url", url)
	}
	logger.Info("embedded NATS JetStream server ready", attrs...)
	return &natsPart{server: srv, lock: lock}, nil
}

func connectNATS(ctx context.Context, url string, logger *slog.Logger) (*natsPart, error) {
	nc, err := nats.Connect(url, nats.Name("fjord serve"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.AccountInfo(ctx)
		cancel()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("NATS at %s has no JetStream for this account: %w", url, err)
	}
	logger.Info("using NATS JetStream", "url", nc.ConnectedUrlRedacted())
	return &natsPart{conn: nc}, nil
}

// Run holds the NATS server or connection until ctx ends and then closes
// it; an embedded server that stops on its own ends Run with an error.
// A nil part runs until ctx ends.
func (p *natsPart) Run(ctx context.Context) error {
	switch {
	case p == nil:
		<-ctx.Done()
		return nil
	case p.server != nil:
		return p.server.Run(ctx) // Close releases the lock
	}
	<-ctx.Done()
	p.conn.Close()
	return nil
}

// errNATSStoreInUse is matched by the error of opening an embedded NATS
// store that another process has open.
var errNATSStoreInUse = errors.New("the embedded NATS store is in use by another fjord process")

// lockNATSStore creates dir and takes its lock file, so that two processes
// (serve, and a command such as fjord pubsub) never run NATS servers on
// one store: the NATS server itself does not lock it. Closing the file
// releases the lock.
func lockNATSStore(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the embedded NATS store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "fjord.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking the embedded NATS store %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s)", errNATSStoreInUse, dir)
		}
		return nil, fmt.Errorf("locking the embedded NATS store %s: %w", dir, err)
	}
	return f, nil
}

// Close releases what Run would have, for when Run never ran, and the
// embedded store's lock; serve calls it after Run too.
func (p *natsPart) Close() error {
	if p == nil {
		return nil
	}
	if p.server != nil {
		return errors.Join(p.server.Close(), p.lock.Close())
	}
	p.conn.Close()
	return nil
}
