package grpcstore_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/internal/testcert"
	"github.com/fjord-data/fjord/server"
)

const token = "test-token-0123456789"

// serveSecure starts a server over a memstore with TLS and an auth file
// granting token admin on $all.
func serveSecure(t *testing.T) (string, *testcert.Cert) {
	t.Helper()
	cert := testcert.New(t)
	auth, err := server.ParseAuth([]byte(`{"tokens": [{"name": "t", "token": "` + token + `", "rules": [{"allow": "admin", "on": "$all"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	st := eventstore.New(memstore.New(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := server.New(st, &server.Options{Auth: auth, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.Cert}}})
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return ln.Addr().String(), cert
}

func TestTLSAndToken(t *testing.T) {
	addr, cert := serveSecure(t)
	tests := []struct {
		name string
		url  string
		opts grpcstore.Options
		want string // in the error; "" for success
	}{
		{"connect", "https://" + addr, grpcstore.Options{RootCAs: cert.Pool, Token: token}, ""},
		{"grpc", "https://" + addr, grpcstore.Options{RootCAs: cert.Pool, Token: token, GRPC: true}, ""},
		{"no token", "https://" + addr, grpcstore.Options{RootCAs: cert.Pool}, "unauthenticated"},
		{"wrong token", "https://" + addr, grpcstore.Options{RootCAs: cert.Pool, Token: "wrong-token-0123456789"}, "unauthenticated"},
		{"untrusted certificate", "https://" + addr, grpcstore.Options{Token: token}, "certificate"},
		{"plaintext to TLS", "http://" + addr, grpcstore.Options{Token: token}, "grpcstore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := grpcstore.New(tc.url, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := eventstore.New(b, nil)
			defer s.Close()
			_, err = s.Append(t.Context(), "order-1", eventstore.Any, eventstore.Event{Type: "X", Data: []byte(`{}`)})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Append: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Append: %v, want an error containing %q", err, tc.want)
			case tc.want != "":
				return
			}
			// A subscription over TLS with the token: WaitHead's watch and
			// the catch-up reads both carry it.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			for d, err := range s.Subscribe(ctx, eventstore.SubscribeOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				if d.Kind == eventstore.DeliveredEvent {
					break
				}
			}
		})
	}
}
