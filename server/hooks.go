package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore"
)

// Hooks observe the server, for metrics (package telemetry fills them).
// Every field is optional. They run on the request's goroutine, must be
// fast, and must be safe for concurrent use.
type Hooks struct {
	// OnAppend runs after every Append call.
	OnAppend func(AppendInfo)
	// OnRead runs after every ReadStream and ReadAll call.
	OnRead func(ReadInfo)
	// OnSubscribe runs when a subscription (Subscribe or SSE) starts
	// delivering, OnUnsubscribe when it ends.
	OnSubscribe, OnUnsubscribe func(SubscribeInfo)
	// OnDeliver runs for every event a subscription sends.
	OnDeliver func(SubscribeInfo)
}

// AppendInfo describes one Append call.
type AppendInfo struct {
	Streams, Events int
	Bytes           int // event data and metadata
	Duration        time.Duration
	Code            string // "ok", or the status code's name such as "failed_precondition"
}

// ReadInfo describes one ReadStream or ReadAll call.
type ReadInfo struct {
	Method string // "ReadStream" or "ReadAll"
	Events int
	Code   string
}

// SubscribeInfo describes a subscription.
type SubscribeInfo struct {
	Protocol string // "rpc" (Subscribe) or "sse"
}

func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

func (h *Hooks) appended(req *esv1.AppendRequest, start time.Time, err error) {
	if h.OnAppend == nil {
		return
	}
	info := AppendInfo{Streams: len(req.GetAppends()), Duration: time.Since(start), Code: codeName(err)}
	for _, a := range req.GetAppends() {
		info.Events += len(a.GetEvents())
		for _, e := range a.GetEvents() {
			info.Bytes += len(e.GetData()) + len(e.GetMetadata())
		}
	}
	h.OnAppend(info)
}

func (h *Hooks) read(method string, events int, err error) {
	if h.OnRead != nil {
		h.OnRead(ReadInfo{Method: method, Events: events, Code: codeName(err)})
	}
}

// subscribers tracks the live subscriptions, for SubscriberStats.
type subscribers struct {
	hooks *Hooks
	mu    struct {
		sync.Mutex
		set map[*subscriber]struct{}
	}
}

// subscriber is one live subscription: for $all, the position of the last
// event, checkpoint or caught-up it sent, or where it started.
type subscriber struct {
	info      SubscribeInfo
	all       bool // a $all subscription: its lag counts
	delivered atomic.Uint64
}

// add registers a subscription with opts, which starts after position from
// (only a $all subscription's lag is tracked).
func (ss *subscribers) add(protocol string, all bool, from uint64) *subscriber {
	sub := &subscriber{info: SubscribeInfo{Protocol: protocol}, all: all}
	sub.delivered.Store(from)
	ss.mu.Lock()
	if ss.mu.set == nil {
		ss.mu.set = make(map[*subscriber]struct{})
	}
	ss.mu.set[sub] = struct{}{}
	ss.mu.Unlock()
	if ss.hooks.OnSubscribe != nil {
		ss.hooks.OnSubscribe(sub.info)
	}
	return sub
}

func (ss *subscribers) remove(sub *subscriber) {
	ss.mu.Lock()
	delete(ss.mu.set, sub)
	ss.mu.Unlock()
	if ss.hooks.OnUnsubscribe != nil {
		ss.hooks.OnUnsubscribe(sub.info)
	}
}

// sent records that sub sent d.
func (ss *subscribers) sent(sub *subscriber, d *eventstore.Delivery) {
	sub.delivered.Store(uint64(d.Position))
	if d.Kind == eventstore.DeliveredEvent && ss.hooks.OnDeliver != nil {
		ss.hooks.OnDeliver(sub.info)
	}
}

// start registers a subscription with opts, for protocol.
func (ss *subscribers) start(ctx context.Context, st *eventstore.Store, protocol string, opts *eventstore.SubscribeOptions) *subscriber {
	from := uint64(opts.From)
	if opts.Stream == "" && opts.From == eventstore.End {
		h, _ := st.Head(ctx) // on error, 0: the lag shows large until the first delivery
		from = uint64(h)
	}
	return ss.add(protocol, opts.Stream == "", from)
}

// SubscriberStats are the live subscriptions and how far behind they are.
type SubscriberStats struct {
	Head  uint64 // the store's head
	Count int
	// MaxLag and SumLag are over the live $all subscriptions (stream
	// subscriptions have no lag in positions): head minus the position of
	// the last event, checkpoint or caught-up it sent (or where it
	// started). A filtered subscription's lag counts the events it skips
	// until its next checkpoint.
	MaxLag, SumLag uint64
}

// SubscriberStats returns the live subscriptions' lag behind the store's
// head now.
func (s *Server) SubscriberStats(ctx context.Context) (SubscriberStats, error) {
	h, err := s.store.Head(ctx)
	if err != nil {
		return SubscriberStats{}, err
	}
	st := SubscriberStats{Head: uint64(h)}
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	for sub := range s.subs.mu.set {
		st.Count++
		if d := sub.delivered.Load(); sub.all && d < st.Head {
			st.SumLag += st.Head - d
			st.MaxLag = max(st.MaxLag, st.Head-d)
		}
	}
	return st, nil
}
