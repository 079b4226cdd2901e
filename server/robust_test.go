package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
	"github.com/fjord-data/fjord/eventstore/grpcstore"
	"github.com/fjord-data/fjord/server"
)

// durable is a server over a filestore in dir, on addr ("127.0.0.1:0" for
// any port).
type durable struct {
	addr  string
	store *eventstore.Store
	stop  context.CancelFunc
	done  chan error
}

func startDurable(t *testing.T, dir, addr string) *durable {
	t.Helper()
	b, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := eventstore.New(b, nil)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &durable{addr: ln.Addr().String(), store: st, stop: cancel, done: make(chan error, 1)}
	go func() { d.done <- server.New(st, nil).Serve(ctx, ln) }()
	return d
}

// shutdown stops the server as SIGTERM does and closes its store.
func (d *durable) shutdown(t *testing.T) {
	t.Helper()
	d.stop()
	if err := <-d.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := d.store.Close(); err != nil {
		t.Errorf("closing the store: %v", err)
	}
}

func client(t *testing.T, addr string) *eventstore.Store {
	t.Helper()
	b, err := grpcstore.New("http://"+addr, &grpcstore.Options{ReconnectDelay: 100e6})
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.New(b, nil)
}

type acked struct {
	stream   eventstore.StreamID
	version  eventstore.Version
	position eventstore.Position
}

// TestShutdownUnderLoad: writers append through grpcstore while the server
// shuts down; every append acknowledged to a client is in the store when
// its directory is reopened, and the log has no hole.
func TestShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	d := startDurable(t, dir, "127.0.0.1:0")
	c := client(t, d.addr)
	defer c.Close()
	const writers, maxPerWriter, stopAfter = 16, 5000, 400
	var (
		mu    sync.Mutex
		acks  []acked
		wg    sync.WaitGroup
		ready = make(chan struct{}) // closed once stopAfter appends are acknowledged
		once  sync.Once
	)
	for w := range writers {
		wg.Go(func() {
			stream := eventstore.StreamID(fmt.Sprintf("load-%d", w))
			for i := range maxPerWriter {
				res, err := c.Append(context.Background(), stream, eventstore.Exact(eventstore.Version(i)),
					eventstore.Event{Type: "Tick", Data: []byte(`{}`)})
				if err != nil {
					return // the server went away: this append was not acknowledged
				}
				mu.Lock()
				acks = append(acks, acked{stream, res.Version, res.Position})
				if len(acks) == stopAfter {
					once.Do(func() { close(ready) })
				}
				mu.Unlock()
			}
		})
	}
	<-ready
	d.shutdown(t) // with appends in flight
	wg.Wait()

	b, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := eventstore.New(b, nil)
	defer st.Close()
	var log []acked
	for e, err := range st.ReadAll(t.Context(), eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, acked{e.Stream, e.Version, e.Position})
	}
	at := make(map[eventstore.Position]acked)
	for i, e := range log {
		if e.position != eventstore.Position(i+1) {
			t.Fatalf("the log has a hole: event %d is at position %d", i, e.position)
		}
		at[e.position] = e
	}
	missing := 0
	for _, a := range acks {
		if at[a.position] != a {
			missing++
			t.Errorf("acknowledged %+v, the reopened store has %+v", a, at[a.position])
		}
	}
	t.Logf("%d appends acknowledged, %d events in the reopened log, %d missing", len(acks), len(log), missing)
}

// TestResumeAfterRestart: a subscription over grpcstore keeps going across
// a server restart on the same directory and address, with no gap and no
// duplicate.
func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	d := startDurable(t, dir, "127.0.0.1:0")
	addr := d.addr
	appendN := func(st *eventstore.Store, n int) {
		t.Helper()
		for range n {
			if _, err := st.Append(t.Context(), "order-1", eventstore.Any, eventstore.Event{Type: "X", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(d.store, 50)

	c := client(t, addr)
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan eventstore.Position, 200)
	subErr := make(chan error, 1)
	go func() {
		for dv, err := range c.Subscribe(ctx, eventstore.SubscribeOptions{}) {
			if err != nil {
				subErr <- err
				return
			}
			if dv.Kind == eventstore.DeliveredEvent {
				got <- dv.Position
			}
		}
	}()
	receive := func(n int) []eventstore.Position {
		t.Helper()
		var ps []eventstore.Position
		for range n {
			select {
			case p := <-got:
				ps = append(ps, p)
			case err := <-subErr:
				t.Fatalf("the subscription ended after %v: %v", ps, err)
			}
		}
		return ps
	}
	first := receive(50)
	d.shutdown(t)
	d = startDurable(t, dir, addr) // same directory, same address
	defer d.shutdown(t)
	appendN(d.store, 50)
	second := receive(50)
	var want []eventstore.Position
	for p := range eventstore.Position(100) {
		want = append(want, p+1)
	}
	if diff := cmp.Diff(want, append(first, second...)); diff != "" {
		t.Errorf("positions delivered across the restart (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-subErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the subscription ended with %v, want context.Canceled", err)
	}
}

// TestManySubscribersMemory: 1,000 SSE subscribers, 100 of which stop
// reading (their connections' receive buffers shrunk to 4 KiB), while
// appends continue. The readers get every event, and the process's heap
// (server and clients) stays bounded.
func TestManySubscribersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const subscribers, stalled, appends, perAppend, size = 1000, 100, 300, 3, 1024 // the test server takes appends up to 4 KiB
	ts := start(t, nil)
	dialer := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	readerHC := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subscribers}}
	stalledHC := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: stalled}}
	defer readerHC.CloseIdleConnections()
	defer stalledHC.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	total := appends * perAppend
	var wg sync.WaitGroup
	counts := make(chan int, subscribers)
	live := make(chan struct{}, subscribers)
	for i := range subscribers {
		hc := readerHC
		if i < stalled {
			hc = stalledHC
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"/v1/subscribe?from=start", nil)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 8<<10), 64<<10)
			n := 0
			for sc.Scan() {
				line := sc.Text()
				if line == "event: caught-up" {
					live <- struct{}{}
					if i < stalled {
						<-ctx.Done() // stop reading until the end of the test
						return
					}
				}
				if strings.HasPrefix(line, "id: ") {
					if n++; n == total {
						break
					}
				}
			}
			counts <- n
		})
	}
	for range subscribers {
		<-live
	}
	c := ts.client(true)
	data := []byte(`"` + strings.Repeat("x", size-2) + `"`)
	for i := range appends {
		req := appendReq(fmt.Sprintf("load-%d", i%10), nil)
		for range perAppend {
			req.Appends[0].Events = append(req.Appends[0].Events, ev("Tick"))
			req.Appends[0].Events[len(req.Appends[0].Events)-1].Data = data
		}
		if _, err := c.Append(ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	var readersDone int
	for range subscribers - stalled {
		if n := <-counts; n == total {
			readersDone++
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stats, err := ts.srv.SubscriberStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d subscribers (%d stalled), %d events of %d bytes: heap in use %.1f MiB, heap sys %.1f MiB, max lag %d",
		subscribers, stalled, total, size, float64(ms.HeapInuse)/(1<<20), float64(ms.HeapSys)/(1<<20), stats.MaxLag)
	if readersDone != subscribers-stalled {
		t.Errorf("%d of %d reading subscribers got all %d events", readersDone, subscribers-stalled, total)
	}
	if ms.HeapInuse > 512<<20 {
		t.Errorf("heap in use %d MiB, want under 512 MiB", ms.HeapInuse>>20)
	}
	cancel()
	wg.Wait()
}
