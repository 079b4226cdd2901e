package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
)

// sseMessage is one Server-Sent Event: id, event and data lines.
type sseMessage struct {
	ID, Event, Data string
}

// sseStream reads messages from an SSE response.
type sseStream struct {
	res *http.Response
	sc  *bufio.Scanner
}

func (ts *testServer) sse(t *testing.T, ctx context.Context, query, lastEventID string) (*sseStream, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.url+"/v1/subscribe?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := ts.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseStream{res: res, sc: bufio.NewScanner(res.Body)}, res
}

// next returns the next message, or fails the test at the end of the
// stream.
func (s *sseStream) next(t *testing.T) sseMessage {
	t.Helper()
	var m sseMessage
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			return m
		case strings.HasPrefix(line, "id: "):
			m.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			m.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			m.Data = line[6:]
		}
	}
	t.Fatalf("SSE stream ended: %v", s.sc.Err())
	return m
}

// until returns the messages up to and including the first of kind event.
func (s *sseStream) until(t *testing.T, event string) []sseMessage {
	t.Helper()
	var out []sseMessage
	for {
		m := s.next(t)
		out = append(out, m)
		if m.Event == event {
			return out
		}
	}
}

// ids returns the ids of the messages that carry events.
func ids(ms []sseMessage) []string {
	var out []string
	for _, m := range ms {
		if m.Event == "" {
			out = append(out, m.ID)
		}
	}
	return out
}

func (ts *testServer) mustAppend(t *testing.T, stream string, types ...string) {
	t.Helper()
	evs := make([]*esv1.Event, len(types))
	for i, typ := range types {
		evs[i] = ev(typ)
	}
	if _, err := ts.client(true).Append(t.Context(), connect.NewRequest(appendReq(stream, nil, evs...))); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func TestSSE(t *testing.T) {
	ts := start(t, nil)
	ts.mustAppend(t, "order-1", "OrderPlaced", "ItemAdded") // 1, 2
	ts.mustAppend(t, "cart-1", "CartOpened")                // 3
	ts.mustAppend(t, "order-2", "OrderPlaced")              // 4
	ts.mustAppend(t, "order-1", "OrderPaid")                // 5

	tests := []struct {
		name, query, lastID string
		want                []string // ids of the events before caught up
	}{
		{"AllFromStart", "from=start", "", []string{"1", "2", "3", "4", "5"}},
		{"AllFromEnd", "", "", nil},
		{"AllFromPosition", "from=3", "", []string{"3", "4", "5"}},
		{"Category", "category=order&from=start", "", []string{"1", "2", "4", "5"}},
		{"Types", "type=OrderPlaced,OrderPaid&from=start", "", []string{"1", "4", "5"}},
		{"TypesRepeated", "type=OrderPlaced&type=CartOpened&from=start", "", []string{"1", "3", "4"}},
		{"Prefix", "prefix=order-2&from=start", "", []string{"4"}},
		{"ResumeAll", "from=start", "2", []string{"3", "4", "5"}},
		{"ResumeCategory", "category=order", "2", []string{"4", "5"}},
		{"Stream", "stream=order-1&from=start", "", []string{"1", "2", "5"}},
		{"StreamFromVersion", "stream=order-1&from=2", "", []string{"2", "5"}},
		{"ResumeStream", "stream=order-1", "2", []string{"5"}},
		{"ResumeStreamBetween", "stream=order-1", "4", []string{"5"}},
		{"ResumeStreamAtEnd", "stream=order-1", "5", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s, res := ts.sse(t, ctx, tc.query, tc.lastID)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			if diff := cmp.Diff(tc.want, ids(s.until(t, "caught-up"))); diff != "" {
				t.Errorf("event ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("Live", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s, _ := ts.sse(t, ctx, "category=order", "")
		s.until(t, "caught-up")
		ts.mustAppend(t, "cart-1", "CartClosed") // 6: filtered out
		ts.mustAppend(t, "order-3", "OrderPlaced")
		got := s.next(t)
		for got.Event == "checkpoint" {
			got = s.next(t)
		}
		if got.ID != "7" || !strings.Contains(got.Data, `"stream":"order-3"`) || !strings.Contains(got.Data, `"data":{"n":1}`) {
			t.Errorf("live event = %+v, want id 7 of order-3 with inline JSON data", got)
		}
	})
}

func TestSSEBadRequest(t *testing.T) {
	ts := start(t, nil)
	for _, q := range []string{"from=yesterday", "stream=$all", "stream=order-1&category=order", "bogus=1", "checkpoint=soon"} {
		t.Run(q, func(t *testing.T) {
			_, res := ts.sse(t, t.Context(), q, "")
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d (%s), want 400", res.StatusCode, body)
			}
		})
	}
	_, res := ts.sse(t, t.Context(), "", "not-a-number")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: status %d, want 400", res.StatusCode)
	}
}

// TestSlowSubscriber checks that a subscriber that stops reading holds
// neither writers nor other subscribers up.
func TestSlowSubscriber(t *testing.T) {
	ts := start(t, nil)
	ctx := t.Context()
	c := ts.client(true)
	slow, err := c.Subscribe(ctx, connect.NewRequest(&esv1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	const n = 3000
	for i := range n {
		ts.mustAppend(t, fmt.Sprintf("load-%d", i%10), "Loaded")
	}
	fast, err := c.Subscribe(ctx, connect.NewRequest(&esv1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	count := func(s *connect.ServerStreamForClient[esv1.SubscribeResponse]) (events int) {
		for s.Receive() {
			if s.Msg().GetEvent() != nil {
				events++
			}
			if events == n {
				return events
			}
		}
		t.Fatalf("subscription ended: %v", s.Err())
		return 0
	}
	if got := count(fast); got != n {
		t.Errorf("fast subscriber got %d events, want %d", got, n)
	}
	if got := count(slow); got != n {
		t.Errorf("slow subscriber got %d events, want %d", got, n)
	}
}

// TestShutdownEndsStreams checks that Serve returns when its context ends
// although subscriptions are open: they end with UNAVAILABLE.
func TestShutdownEndsStreams(t *testing.T) {
	ts := start(t, nil)
	ts.mustAppend(t, "order-1", "OrderPlaced")
	sub, err := ts.client(true).Subscribe(t.Context(), connect.NewRequest(&esv1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for sub.Receive() && sub.Msg().GetCaughtUp() == nil {
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, _ := ts.sse(t, ctx, "", "")
	s.until(t, "caught-up")

	ts.shutdown(t)
	for sub.Receive() {
		t.Errorf("delivery %v after shutdown", sub.Msg())
	}
	if got := connect.CodeOf(sub.Err()); got != connect.CodeUnavailable {
		t.Errorf("subscription ended with %v, want UNAVAILABLE", sub.Err())
	}
	if rest, _ := io.ReadAll(s.res.Body); strings.Contains(string(rest), "id:") {
		t.Errorf("SSE events after shutdown: %s", rest)
	}
}
