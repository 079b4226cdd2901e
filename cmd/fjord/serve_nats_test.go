package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// serveUntilListening runs `fjord serve` with env and args until the
// returned stop is called, once it listens; stop returns serve's error.
func serveUntilListening(t *testing.T, env map[string]string, args ...string) (stderr *lockedBuffer, stop func() error) {
	t.Helper()
	h := newHarness(t)
	stderr = &lockedBuffer{}
	env["FJORD_LISTEN"] = "127.0.0.1:0"
	a := h.app(strings.NewReader(""), &bytes.Buffer{}, stderr, env)
	listening := make(chan struct{}, 1)
	a.listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		listening <- struct{}{}
		return ln, err
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--log-format", "json"}, args...), a) }()
	select {
	case <-listening:
	case err := <-done:
		cancel()
		t.Fatalf("serve ended: %v\n%s", err, stderr.String())
	}
	return stderr, func() error {
		cancel()
		return <-done
	}
}

// logged returns the JSON log record whose msg is msg, or nil.
func logged(log, msg string) map[string]any {
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// TestServeEmbeddedNATS: by default serve runs a NATS JetStream server with
// its store in <data>/nats, reachable over TCP when --nats-listen asks,
// and stops it on shutdown.
func TestServeEmbeddedNATS(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := t.TempDir()
	stderr, stop := serveUntilListening(t, map[string]string{"FJORD_DATA": data, "FJORD_NATS": ""}, "--nats-listen", "127.0.0.1:0")
	rec := logged(stderr.String(), "embedded NATS JetStream server ready")
	url, _ := rec["url"].(string)
	if rec == nil || url == "" || rec["dir"] != filepath.Join(data, "nats") {
		t.Fatalf("no log of the embedded server's URL and directory:\n%s", stderr.String())
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, _ error) { nc.Close() })
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatalf("JetStream on the embedded server: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	<-closed // the server went away with serve
	if _, err := os.Stat(filepath.Join(data, "nats", "jetstream", "$G", "streams", "S")); err != nil {
		t.Errorf("the stream is not stored under <data>/nats: %v", err)
	}
}

func TestServeExternalNATS(t *testing.T) {
	url := os.Getenv("FJORD_TEST_NATS")
	if url == "" {
		t.Skip("FJORD_TEST_NATS is not set")
	}
	data := t.TempDir()
	stderr, stop := serveUntilListening(t, map[string]string{"FJORD_DATA": data}, "--nats", url)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	if logged(stderr.String(), "using NATS JetStream") == nil {
		t.Errorf("no log of the external server:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, "nats")); !os.IsNotExist(err) {
		t.Errorf("with --nats, serve made <data>/nats (%v)", err)
	}
}

func TestServeNATSFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"listen off loopback", []string{"--nats-listen", "0.0.0.0:0"}, "--insecure"},
		{"listen with off", []string{"--nats", "off", "--nats-listen", "127.0.0.1:0"}, "--nats-listen needs the embedded"},
		{"listen with a URL", []string{"--nats", "nats://127.0.0.1:1", "--nats-listen", "127.0.0.1:0"}, "--nats names an external"},
		{"unreachable", []string{"--nats", "nats://127.0.0.1:1"}, "connecting to NATS at nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var stderr bytes.Buffer
			env := map[string]string{"FJORD_DATA": t.TempDir(), "FJORD_LISTEN": "127.0.0.1:0"}
			err := run(t.Context(), append([]string{"serve"}, tt.args...), h.app(strings.NewReader(""), &bytes.Buffer{}, &stderr, env))
			if err == nil || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("serve %v: %v, stderr %q; want an error naming %q", tt.args, err, stderr.String(), tt.want)
			}
		})
	}
}
