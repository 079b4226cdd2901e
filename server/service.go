package server

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore"
)

// service implements esv1connect.EventStoreServiceHandler over a Store.
type service struct {
	store *eventstore.Store
	opts  *Options
	// drain ends when the server starts shutting down: long-lived streams
	// stop then, so that the shutdown does not wait for them.
	drain context.Context
	auth  *authorizer
	subs  *subscribers
}

func (s *service) Append(ctx context.Context, req *connect.Request[esv1.AppendRequest]) (*connect.Response[esv1.AppendResponse], error) {
	start := time.Now()
	res, err := s.append(ctx, req.Msg)
	s.opts.Hooks.appended(req.Msg, start, err)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

// append runs one Append request; its error is a *connect.Error.
func (s *service) append(ctx context.Context, req *esv1.AppendRequest) (*esv1.AppendResponse, error) {
	for _, a := range req.GetAppends() {
		if err := s.auth.need(ctx, PermWrite, a.GetStream()); err != nil {
			return nil, statusError(err, nil)
		}
	}
	appends, err := appendsFromProto(req)
	if err != nil {
		return nil, statusError(err, nil)
	}
	res, err := s.store.AppendMulti(ctx, appends...)
	if err != nil {
		return nil, statusError(err, req.GetAppends())
	}
	out := &esv1.AppendResponse{Results: make([]*esv1.StreamResult, len(res))}
	for i, r := range res {
		out.Results[i] = &esv1.StreamResult{Version: uint64(r.Version), Position: uint64(r.Position)}
		out.Duplicate = r.Duplicate
	}
	return out, nil
}

// page collects read events up to the page limits. It reports whether
// the page is full: then the read stops and the client continues.
type page struct {
	events  []*esv1.RecordedEvent
	bytes   int
	maxN    int
	maxSize int
}

func (p *page) add(e *eventstore.RecordedEvent) (full bool) {
	pe := recordedToProto(e)
	p.events = append(p.events, pe)
	p.bytes += proto.Size(pe)
	return len(p.events) >= p.maxN || p.bytes >= p.maxSize
}

// pageLimit is how many events to ask the store for: one page, and one
// more to learn whether the read goes on.
func (s *service) newPage(limit uint32) (*page, int) {
	n := s.opts.PageEvents
	if limit > 0 && int(limit) < n {
		n = int(limit)
	}
	return &page{maxN: n, maxSize: s.opts.PageBytes}, n
}

func (s *service) ReadStream(ctx context.Context, req *connect.Request[esv1.ReadStreamRequest]) (*connect.Response[esv1.ReadStreamResponse], error) {
	res, err := s.readStream(ctx, req)
	if err != nil {
		s.opts.Hooks.read("ReadStream", 0, err)
		return nil, err
	}
	s.opts.Hooks.read("ReadStream", len(res.Msg.GetEvents()), nil)
	return res, err
}

func (s *service) readStream(ctx context.Context, req *connect.Request[esv1.ReadStreamRequest]) (*connect.Response[esv1.ReadStreamResponse], error) {
	m := req.Msg
	if err := s.auth.need(ctx, PermRead, m.GetStream()); err != nil {
		return nil, err
	}
	p, n := s.newPage(m.GetLimit())
	out := &esv1.ReadStreamResponse{}
	opts := eventstore.ReadStreamOptions{From: eventstore.Version(m.GetFrom()), Backwards: m.GetBackwards(), Limit: n}
	for e, err := range s.store.ReadStream(ctx, eventstore.StreamID(m.GetStream()), opts) {
		if err != nil {
			return nil, statusError(err, nil)
		}
		if p.add(&e) {
			out.NextFrom = next(uint64(e.Version), m.GetBackwards())
			out.More = out.NextFrom > 0 && (m.GetLimit() == 0 || len(p.events) < int(m.GetLimit()))
			break
		}
	}
	out.Events = p.events
	return connect.NewResponse(out), nil
}

func (s *service) ReadAll(ctx context.Context, req *connect.Request[esv1.ReadAllRequest]) (*connect.Response[esv1.ReadAllResponse], error) {
	res, err := s.readAll(ctx, req)
	if err != nil {
		s.opts.Hooks.read("ReadAll", 0, err)
		return nil, err
	}
	s.opts.Hooks.read("ReadAll", len(res.Msg.GetEvents()), nil)
	return res, err
}

func (s *service) readAll(ctx context.Context, req *connect.Request[esv1.ReadAllRequest]) (*connect.Response[esv1.ReadAllResponse], error) {
	m := req.Msg
	filter, err := s.auth.readFilter(ctx, filterFromProto(m.GetFilter()))
	if err != nil {
		return nil, err
	}
	until := eventstore.Position(m.GetUntil())
	if until == 0 {
		h, err := s.store.Head(ctx)
		if err != nil {
			return nil, statusError(err, nil)
		}
		until = h
	}
	p, n := s.newPage(m.GetLimit())
	out := &esv1.ReadAllResponse{Until: uint64(until)}
	opts := eventstore.ReadAllOptions{From: eventstore.Position(m.GetFrom()), Until: until, Backwards: m.GetBackwards(),
		Limit: n, Filter: filter}
	for e, err := range s.store.ReadAll(ctx, opts) {
		if err != nil {
			return nil, statusError(err, nil)
		}
		if p.add(&e) {
			out.NextFrom = next(uint64(e.Position), m.GetBackwards())
			out.More = out.NextFrom > 0 && out.NextFrom <= uint64(until) && (m.GetLimit() == 0 || len(p.events) < int(m.GetLimit()))
			break
		}
	}
	out.Events = p.events
	return connect.NewResponse(out), nil
}

// next is where a paged read goes on after v: v+1 forwards, v-1 backwards
// (0 when there is nothing before).
func next(v uint64, backwards bool) uint64 {
	if backwards {
		return v - 1
	}
	return v + 1
}

func (s *service) StreamInfo(ctx context.Context, req *connect.Request[esv1.StreamInfoRequest]) (*connect.Response[esv1.StreamInfoResponse], error) {
	if err := s.auth.need(ctx, PermRead, req.Msg.GetStream()); err != nil {
		return nil, err
	}
	i, err := s.store.StreamInfo(ctx, eventstore.StreamID(req.Msg.GetStream()))
	if err != nil {
		return nil, statusError(err, nil)
	}
	return connect.NewResponse(&esv1.StreamInfoResponse{Stream: string(i.Stream), Version: uint64(i.Version), Position: uint64(i.Position),
		Created: timestamppb.New(i.Created), Updated: timestamppb.New(i.Updated)}), nil
}

func (s *service) Head(ctx context.Context, req *connect.Request[esv1.HeadRequest]) (*connect.Response[esv1.HeadResponse], error) {
	h, err := s.store.Head(ctx)
	if err != nil {
		return nil, statusError(err, nil)
	}
	return connect.NewResponse(&esv1.HeadResponse{Position: uint64(h)}), nil
}

func (s *service) WatchHead(ctx context.Context, req *connect.Request[esv1.WatchHeadRequest], stream *connect.ServerStream[esv1.WatchHeadResponse]) error {
	ctx, stop := s.untilDrain(ctx)
	defer stop()
	h, err := s.store.Head(ctx)
	for err == nil {
		if err = stream.Send(&esv1.WatchHeadResponse{Position: uint64(h)}); err != nil {
			return err // the client went away
		}
		h, err = s.store.WaitHead(ctx, h)
	}
	return statusError(s.drainErr(err), nil)
}

func (s *service) Subscribe(ctx context.Context, req *connect.Request[esv1.SubscribeRequest], stream *connect.ServerStream[esv1.SubscribeResponse]) error {
	ctx, stop := s.untilDrain(ctx)
	defer stop()
	opts := subscribeOptionsFromProto(req.Msg, s.opts.PageEvents)
	if err := s.auth.subscribe(ctx, &opts); err != nil {
		return err
	}
	sub := s.subs.start(ctx, s.store, "rpc", &opts)
	defer s.subs.remove(sub)
	for d, err := range s.store.Subscribe(ctx, opts) {
		if err != nil {
			return statusError(s.drainErr(err), nil)
		}
		// Send blocks while the client does not read: the subscription
		// pulls no further, so a slow client only stalls itself.
		if err := stream.Send(deliveryToProto(&d)); err != nil {
			return err
		}
		s.subs.sent(sub, &d)
	}
	return nil
}

// untilDrain returns ctx, also cancelled when the server starts draining.
func (s *service) untilDrain(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.drain, cancel)
	return ctx, func() { stop(); cancel() }
}

// drainErr reports a cancellation caused by draining as errShuttingDown.
func (s *service) drainErr(err error) error {
	if errors.Is(err, context.Canceled) && s.drain.Err() != nil {
		return errShuttingDown
	}
	return err
}
