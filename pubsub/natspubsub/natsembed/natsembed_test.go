package natsembed_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestInProcess: the zero Options start a server that opens no port,
// serves JetStream in process, and removes its temporary store on Close.
func TestInProcess(t *testing.T) {
	s, err := natsembed.Start(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if url := s.ClientURL(); url != "" {
		t.Errorf("ClientURL = %q, want none without Listen", url)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Errorf("JetStream: %v", err)
	}
	dir := s.Dir()
	nc.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary store %s after Close: %v, want removed", dir, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestListen: a random loopback port takes TCP clients, and a restart on
// the same directory keeps the stored messages.
func TestListen(t *testing.T) {
	dir := t.TempDir()
	s, err := natsembed.Start(t.Context(), &natsembed.Options{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":0") {
		t.Errorf("ClientURL = %q, want a random port on 127.0.0.1", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "keep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Close()

	s2, err := natsembed.Start(t.Context(), &natsembed.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	nc2, err := s2.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	st, err := js2.Stream(t.Context(), "KEEP")
	if err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Errorf("after restart: stream %v, %v; want KEEP with 1 message", st, err)
	}
}

func TestBadListen(t *testing.T) {
	for _, addr := range []string{"nowhere", "127.0.0.1:http", "127.0.0.1:70000"} {
		if s, err := natsembed.Start(t.Context(), &natsembed.Options{Listen: addr}); !errors.Is(err, natsembed.ErrStart) {
			t.Errorf("Start(Listen %q) = %v; want ErrStart", addr, err)
			if s != nil {
				s.Close()
			}
		}
	}
}

// TestRun: Run closes the server when its context ends.
func TestRun(t *testing.T) {
	s, err := natsembed.Start(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.Connect(nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after its context ended", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Error("the client was not disconnected when Run ended")
	}
}

// TestLogger: the server's notices reach Options.Logger at debug level.
func TestLogger(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelDebug, true}, {slog.LevelInfo, false}} {
		var buf bytes.Buffer
		s, err := natsembed.Start(t.Context(), &natsembed.Options{
			Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got := strings.Contains(buf.String(), "Server is ready"); got != tt.want {
			t.Errorf("at level %v: logged the ready notice %v, want %v:\n%s", tt.level, got, tt.want, buf.String())
		}
	}
}
