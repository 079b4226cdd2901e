package grpcstore_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
)

// gate holds every AppendBatch call at the server until open is closed,
// and counts the calls.
type gate struct {
	open    chan struct{}
	arrived chan struct{} // a call arrived (when there is room)
	calls   atomic.Int32
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/AppendBatch") {
			g.calls.Add(1)
			select {
			case g.arrived <- struct{}{}:
			default:
			}
			<-g.open
		}
		h.ServeHTTP(w, r)
	})
}

// serveGated starts a server over a fresh memstore behind a gate.
func serveGated(t *testing.T) (string, *eventstore.Store, *gate) {
	t.Helper()
	st := eventstore.New(memstore.New(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{open: make(chan struct{}), arrived: make(chan struct{}, 1)}
	hs := server.NewHTTPServer(g.wrap(server.New(st, nil).Handler()))
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return "http://" + ln.Addr().String(), st, g
}

// outcome is what one Commit returned, in a comparable form.
type outcome struct {
	Versions []uint64 // on success
	Conflict *driver.ConflictError
	Code     connect.Code // of any other error
}

// commitAll commits batches concurrently through one Store, holding the
// AppendBatch calls at the server until every Commit has queued its
// append, and checks that they took fewer calls than appends: at most one
// per sender, then one for the rest.
func commitAll(t *testing.T, st *eventstore.Store, url string, g *gate, batches []*driver.Batch) []outcome {
	t.Helper()
	const senders = 4
	c, err := grpcstore.New(url, &grpcstore.Options{MaxBatchCalls: senders})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var queued atomic.Int32
	all := make(chan struct{})
	grpcstore.SetEnqueueHook(c, func() {
		if queued.Add(1) == int32(len(batches)) {
			close(all)
		}
	})
	got := make([]outcome, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() {
			res, err := c.Commit(t.Context(), b)
			got[i] = toOutcome(res, err)
		})
	}
	<-all
	close(g.open)
	wg.Wait()
	if n := g.calls.Load(); n > senders+1 {
		t.Errorf("%d appends took %d AppendBatch calls, want at most %d", len(batches), n, senders+1)
	}
	return got
}

func toOutcome(res driver.Committed, err error) outcome {
	var conflict *driver.ConflictError
	switch {
	case errors.As(err, &conflict):
		return outcome{Conflict: conflict}
	case err != nil:
		return outcome{Code: connect.CodeOf(err)}
	}
	var o outcome
	for _, s := range res.Streams {
		o.Versions = append(o.Versions, s.Version)
	}
	return o
}

func event(typ string) driver.Event {
	return driver.Event{Type: typ, Data: []byte(`{}`), GeneratedID: true}
}

// TestGroupCommit runs 64 concurrent appends, half of which expect a
// wrong version of a stream at their second place, and checks that they
// share few calls and each gets its own result.
func TestGroupCommit(t *testing.T) {
	url, st, g := serveGated(t)
	if _, err := st.Append(t.Context(), "taken", eventstore.Any, eventstore.Event{Type: "Taken"}); err != nil {
		t.Fatal(err)
	}
	var batches []*driver.Batch
	var want []outcome
	for i := range 64 {
		own := driver.StreamAppend{Stream: "s-" + strconv.Itoa(i), Expected: driver.Expected{Kind: driver.ExpectNoStream},
			Events: []driver.Event{event("A"), event("B")}}
		if i%2 == 0 {
			batches = append(batches, &driver.Batch{Appends: []driver.StreamAppend{own}})
			want = append(want, outcome{Versions: []uint64{2}})
			continue
		}
		wrong := driver.StreamAppend{Stream: "taken", Expected: driver.Expected{Kind: driver.ExpectExact, Version: 5},
			Events: []driver.Event{event("C")}}
		batches = append(batches, &driver.Batch{Appends: []driver.StreamAppend{own, wrong}})
		want = append(want, outcome{Conflict: &driver.ConflictError{Index: 1, Actual: 1}})
	}
	got := commitAll(t, st, url, g, batches)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	h, err := st.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h != 1+32*2 {
		t.Errorf("head %d, want %d: only the 32 good appends of 2 events after the first", h, 1+32*2)
	}
}

// TestGroupCommitBadItem checks that an invalid append fails alone.
func TestGroupCommitBadItem(t *testing.T) {
	url, st, g := serveGated(t)
	var batches []*driver.Batch
	var want []outcome
	for i := range 16 {
		typ, w := "Good", outcome{Versions: []uint64{1}}
		if i == 7 {
			typ, w = "", outcome{Code: connect.CodeInvalidArgument}
		}
		batches = append(batches, &driver.Batch{Appends: []driver.StreamAppend{
			{Stream: "s-" + strconv.Itoa(i), Events: []driver.Event{event(typ)}}}})
		want = append(want, w)
	}
	got := commitAll(t, st, url, g, batches)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// TestCommitCanceledWhileQueued: a Commit whose context ends while its
// append waits behind a call in flight returns ctx.Err() and is never
// sent.
func TestCommitCanceledWhileQueued(t *testing.T) {
	url, st, g := serveGated(t)
	c, err := grpcstore.New(url, &grpcstore.Options{MaxBatchCalls: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	queued := make(chan struct{}, 2)
	grpcstore.SetEnqueueHook(c, func() { queued <- struct{}{} })
	first := make(chan error, 1)
	go func() {
		_, err := c.Commit(t.Context(), &driver.Batch{Appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{event("A")}}}})
		first <- err
	}()
	<-queued
	select {
	case <-g.arrived: // the first call is held at the server
	case err := <-first:
		t.Fatalf("first Commit returned before the gate opened: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() {
		_, err := c.Commit(ctx, &driver.Batch{Appends: []driver.StreamAppend{{Stream: "b", Events: []driver.Event{event("B")}}}})
		second <- err
	}()
	<-queued
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) || errors.Is(err, driver.ErrUnknownOutcome) {
		t.Errorf("canceled while queued: %v, want context.Canceled", err)
	}
	close(g.open)
	if err := <-first; err != nil {
		t.Errorf("first Commit: %v", err)
	}
	if _, err := st.StreamInfo(t.Context(), "b"); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("the canceled append's stream: %v, want ErrStreamNotFound", err)
	}
}
