package grpcstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
)

// TestWaitHeadReconnects drops every client connection while a WaitHead
// is pending and checks that the head watch reconnects: the waiter still
// sees the next append.
func TestWaitHeadReconnects(t *testing.T) {
	st := eventstore.New(memstore.New(), nil)
	defer st.Close()
	var watches atomic.Int32
	h := server.New(st, nil).Handler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/WatchHead") {
			watches.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	hs.Config.Protocols = new(http.Protocols)
	hs.Config.Protocols.SetHTTP1(true)
	hs.Config.Protocols.SetUnencryptedHTTP2(true)
	hs.Start()
	defer hs.Close()

	c, err := grpcstore.New(hs.URL, &grpcstore.Options{ReconnectDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	appendOne := func() {
		t.Helper()
		if _, err := st.Append(ctx, "order-1", eventstore.Any, eventstore.Event{Type: "X"}); err != nil {
			t.Fatal(err)
		}
	}
	appendOne()
	if got, err := c.WaitHead(ctx, 0); err != nil || got != 1 {
		t.Fatalf("WaitHead(0) = %d, %v; want 1", got, err)
	}
	for round := uint64(1); round <= 3; round++ {
		type result struct {
			h   uint64
			err error
		}
		done := make(chan result, 1)
		go func() {
			h, err := c.WaitHead(ctx, round)
			done <- result{h, err}
		}()
		hs.CloseClientConnections()
		appendOne()
		if r := <-done; r.err != nil || r.h != round+1 {
			t.Fatalf("round %d: WaitHead = %d, %v; want %d", round, r.h, r.err, round+1)
		}
	}
	if n := watches.Load(); n < 2 {
		t.Errorf("%d WatchHead calls, want a reconnection", n)
	}
}
