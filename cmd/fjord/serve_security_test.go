package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/internal/testcert"
)

const testToken = "cli-test-token-0123456789"

func writeAuthFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "auth.json")
	body := `{"tokens": [{"name": "cli", "token": "` + testToken + `", "rules": [{"allow": "admin", "on": "$all"}]}]}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startServe runs `fjord serve args…` on 127.0.0.1:0 and returns its
// address; the test's cleanup stops it as SIGTERM would.
func startServe(t *testing.T, h *harness, env map[string]string, args ...string) net.Addr {
	t.Helper()
	var stderr lockedBuffer
	env["FJORD_LISTEN"] = "127.0.0.1:0"
	a := h.app(strings.NewReader(""), &bytes.Buffer{}, &stderr, env)
	addrs := make(chan net.Addr, 1)
	a.listen = func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err == nil {
			addrs <- ln.Addr()
		}
		return ln, err
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), a) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	})
	select {
	case addr := <-addrs:
		return addr
	case err := <-done:
		done <- err
		t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		return nil
	}
}

func TestServeTLSAndAuth(t *testing.T) {
	cert := testcert.New(t)
	h := newHarness(t)
	addr := startServe(t, h, map[string]string{"FJORD_AUTH_FILE": writeAuthFile(t)},
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile)
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{{"with token", testToken, true}, {"without token", "", false}} {
		b, err := grpcstore.New("https://"+addr.String(), &grpcstore.Options{RootCAs: cert.Pool, Token: tc.token})
		if err != nil {
			t.Fatal(err)
		}
		c := eventstore.New(b, nil)
		_, err = c.Append(t.Context(), "order-1", eventstore.Any, eventstore.Event{Type: "OrderPlaced", Data: []byte(`{}`)})
		c.Close()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Append over TLS: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestTokenFlag runs the CLI with --token and FJORD_TOKEN against a server
// with an auth file (plaintext, on loopback).
func TestTokenFlag(t *testing.T) {
	served := newHarness(t)
	addr := startServe(t, served, map[string]string{}, "--auth-file", writeAuthFile(t))
	url := "http://" + addr.String()
	client := newHarness(t)
	client.mustRun("", "--server", url, "--token", testToken, "append", "order-1", "OrderPlaced", `{}`)
	a := client.app(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, map[string]string{"FJORD_TOKEN": testToken, "FJORD_SERVER": url})
	if err := run(t.Context(), []string{"read", "order-1"}, a); err != nil {
		t.Errorf("read with FJORD_TOKEN: %v", err)
	}
	_, errOut, err := client.run("", "--server", url, "read", "order-1")
	if err == nil || !strings.Contains(errOut, "bearer token") {
		t.Errorf("read without a token: err %v, stderr %q; want a missing-token error", err, errOut)
	}
}

func TestServeSecurityFlagErrors(t *testing.T) {
	cert := testcert.New(t)
	auth := writeAuthFile(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", cert.CertFile}, "go together"},
		{"missing auth file", []string{"--auth-file", filepath.Join(t.TempDir(), "none.json")}, "auth file"},
		{"TLS without auth off loopback", []string{"--listen", "0.0.0.0:0", "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, "--auth-file"},
		{"auth without TLS off loopback", []string{"--listen", "0.0.0.0:0", "--auth-file", auth}, "--tls-cert"},
	}
	for _, tc := range tests {
		h := newHarness(t)
		_, errOut, err := h.run("", append([]string{"serve"}, tc.args...)...)
		if err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: err %v, stderr %q; want an error containing %q", tc.name, err, errOut, tc.want)
		}
	}
}
