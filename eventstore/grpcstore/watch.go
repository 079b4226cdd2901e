package grpcstore

import (
	"context"
	"time"

	"connectrpc.com/connect"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// WaitHead implements driver.Watcher. The first call starts one head watch
// per Store: a WatchHead stream that the server pushes new heads on, shared
// by every waiter and reopened (with backoff) when its connection drops.
// It runs until Close.
func (s *Store) WaitHead(ctx context.Context, after uint64) (uint64, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	s.watchOnce.Do(func() { go s.watch() })
	return s.head.Wait(ctx, after)
}

// watch keeps a WatchHead stream open until Close, advancing s.head.
func (s *Store) watch() {
	defer close(s.watchDone)
	minDelay := s.opts.ReconnectDelay / 20
	delay := minDelay
	for {
		err := s.watchStream(func() { delay = minDelay })
		if s.closing.Err() != nil {
			return
		}
		s.opts.Logger.Warn("grpcstore: head watch interrupted; reconnecting", "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-s.closing.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, s.opts.ReconnectDelay)
	}
}

// watchStream runs one WatchHead stream until it fails. received runs on
// every message, to reset the backoff.
func (s *Store) watchStream(received func()) error {
	stream, err := s.client.WatchHead(s.closing, connect.NewRequest(&esv1.WatchHeadRequest{}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		received()
		// The head only moves forwards; a server restarted on other data
		// may report less, which changes nothing for waiters.
		if p := stream.Msg().GetPosition(); p > s.head.Load() {
			s.head.Advance(p)
		}
	}
	return stream.Err()
}
