package grpcstore_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/drivertest"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve starts a server over a fresh memstore on 127.0.0.1:0 and returns
// its base URL; the test's cleanup stops it.
func serve(t *testing.T) (string, *eventstore.Store) {
	t.Helper()
	st := eventstore.New(memstore.New(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := server.New(st, nil)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return "http://" + ln.Addr().String(), st
}

func open(t *testing.T, opts *grpcstore.Options) *grpcstore.Store {
	t.Helper()
	url, _ := serve(t)
	c, err := grpcstore.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // runs before the server's cleanup
	return c
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Backend { return open(t, nil) })
}

func TestConformanceGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("the Connect protocol run covers the same code")
	}
	drivertest.Run(t, func(t *testing.T) driver.Backend { return open(t, &grpcstore.Options{GRPC: true}) })
}

func TestNewInvalidURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:7717", "ftp://host", "http://"} {
		if _, err := grpcstore.New(u, nil); err == nil {
			t.Errorf("New(%q) succeeded, want an error", u)
		}
	}
}

// TestServerStoreClosed checks that a closed server store comes back as
// ErrClosed.
func TestServerStoreClosed(t *testing.T) {
	url, st := serve(t)
	c, err := grpcstore.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st.Close()
	if _, err := c.Head(t.Context()); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Head on a closed server store: %v, want ErrClosed", err)
	}
}

var (
	_ driver.Backend = (*grpcstore.Store)(nil)
	_ driver.Watcher = (*grpcstore.Store)(nil)
)
