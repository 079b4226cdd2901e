package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/server"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr             string
		secure, insecure bool
		ok               bool
	}{
		{"127.0.0.1:7717", false, false, true},
		{"127.1.2.3:0", false, false, true},
		{"[::1]:7717", false, false, true},
		{"localhost:7717", false, false, true},
		{":7717", false, false, false},
		{"0.0.0.0:7717", false, false, false},
		{"[::]:7717", false, false, false},
		{"192.0.2.1:7717", false, false, false},
		{"example.com:7717", false, false, false},
		{"0.0.0.0:7717", false, true, true},
		{"0.0.0.0:7717", true, false, true},
		{"7717", false, true, false}, // no host:port
	}
	for _, tc := range tests {
		if err := checkLoopback(tc.addr, tc.secure, tc.insecure); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q, secure=%v, insecure=%v) = %v, want ok=%v", tc.addr, tc.secure, tc.insecure, err, tc.ok)
		}
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	h := newHarness(t)
	_, errOut, err := h.run("", "serve", "--listen", "0.0.0.0:7717")
	if err == nil || !strings.Contains(errOut, "--insecure") {
		t.Errorf("serve on 0.0.0.0: err %v, stderr %q; want a refusal naming --insecure", err, errOut)
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's loggers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServe starts `fjord serve`, appends through a grpcstore client, stops
// the server as SIGINT would, and checks the append was kept.
func TestServe(t *testing.T) {
	h := newHarness(t)
	var stderr lockedBuffer
	a := h.app(strings.NewReader(""), &bytes.Buffer{}, &stderr, map[string]string{"FJORD_LISTEN": "127.0.0.1:0"})
	addrs := make(chan net.Addr, 1)
	a.listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			addrs <- ln.Addr()
		}
		return ln, err
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--log-format", "json"}, a) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serve ended: %v\n%s", err, stderr.String())
	}

	b, err := grpcstore.New("http://"+addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := eventstore.New(b, nil)
	res, err := c.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "OrderPlaced", Data: []byte(`{}`)})
	if err != nil {
		t.Fatalf("Append over the server: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/traces/?format=json")
	if err != nil {
		t.Fatal(err)
	}
	traces, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(traces), `"root": "fjord.eventstore.v1.EventStoreService/AppendBatch"`) {
		t.Errorf("the trace viewer lacks the Append call:\n%s", traces)
	}
	c.Close()
	cancel() // as SIGINT does
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	info, err := eventstore.New(h.backend, nil).StreamInfo(t.Context(), "order-1")
	if err != nil || info.Position != res.Position {
		t.Errorf("after shutdown: StreamInfo = %+v, %v; want the acknowledged append at %d", info, err, res.Position)
	}
	for _, want := range []string{`"msg":"serving the event store"`, `"msg":"shutting down"`, `"msg":"event store closed"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// TestServerFlag runs the store commands against a served store.
func TestServerFlag(t *testing.T) {
	served := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- server.New(eventstore.New(served.backend, nil), nil).Serve(ctx, ln)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	url := "http://" + ln.Addr().String()

	client := newHarness(t) // its own backend stays empty
	client.mustRun("", "--server", url, "append", "order-1", "OrderPlaced", `{"total":42}`, "--expected", "no-stream")
	client.mustRun("", "--server", url, "append", "order-1", "OrderPaid", `{}`, "--expected", "1")
	_, errOut, err := client.run("", "--server", url, "append", "order-1", "OrderPaid", `{}`, "--expected", "1")
	if err == nil || !strings.Contains(errOut, "version 2") {
		t.Errorf("wrong expected version over the server: err %v, stderr %q", err, errOut)
	}
	got := decodeEvents(t, client.mustRun("", "--server", url, "read", "order-1", "--json"))
	if len(got) != 2 || got[0].Type != "OrderPlaced" || got[1].Type != "OrderPaid" {
		t.Errorf("read over the server: %+v", got)
	}
	if out := client.mustRun("", "--server", url, "streams"); !strings.Contains(out, "order-1") {
		t.Errorf("streams over the server:\n%s", out)
	}
	if h, err := eventstore.New(client.backend, nil).Head(t.Context()); err != nil || h != 0 {
		t.Errorf("the local store was written: head %d, %v", h, err)
	}
	if _, _, err := client.run("", "--server", url, "serve"); err == nil {
		t.Error("serve --server succeeded, want a usage error")
	}
	if _, errOut, err := client.run("", "--server", "localhost:1", "read", "order-1"); err == nil || !strings.Contains(errOut, "invalid server URL") {
		t.Errorf("bad --server: err %v, stderr %q", err, errOut)
	}
}
