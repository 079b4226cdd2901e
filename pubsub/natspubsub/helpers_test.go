package natspubsub_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

// envNATS names the variable holding the URL of an external NATS server
// with JetStream.
const envNATS = "FJORD_TEST_NATS"

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a NATS server for a test: embedded, or the external one.
type backend struct {
	name    string
	connect func(t *testing.T) *nats.Conn
}

// backends returns the embedded server, and the external one when
// FJORD_TEST_NATS is set.
func backends() []backend {
	bs := []backend{{"embedded", func(t *testing.T) *nats.Conn { return embedded(t).conn(t) }}}
	if url := os.Getenv(envNATS); url != "" {
		bs = append(bs, backend{"external", func(t *testing.T) *nats.Conn { return dial(t, url) }})
	}
	return bs
}

// forEachBackend runs f as a subtest on every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, nc *nats.Conn)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.connect(t)) })
	}
}

type server struct{ *natsembed.Server }

// embedded starts an in-process server with its store in a temporary
// directory, closed at cleanup.
func embedded(t *testing.T) server {
	t.Helper()
	return startIn(t, t.TempDir())
}

func startIn(t *testing.T, dir string) server {
	t.Helper()
	s, err := natsembed.Start(t.Context(), &natsembed.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return server{s}
}

func (s server) conn(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func dial(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to %s=%s: %v", envNATS, url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// names returns a unique stream name and subject, and deletes the stream
// at cleanup.
func names(t *testing.T, nc *nats.Conn) (stream, subject string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	suffix := strings.ToUpper(hex.EncodeToString(b))
	stream, subject = "FJT_"+suffix, "fjt."+strings.ToLower(suffix)+".events"
	t.Cleanup(func() {
		if nc.Status() != nats.CONNECTED { // a test stopped the server
			return
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		js.DeleteStream(ctx, stream) // absent when the test did not create it
	})
	return stream, subject
}
