package eventstore

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// EndVersion subscribes to a stream from its current end.
const EndVersion = ^Version(0)

// SubscribeOptions select what a subscription delivers. The zero value
// subscribes to all events from the start.
type SubscribeOptions struct {
	// Stream subscribes to one stream. Empty subscribes to $all, narrowed
	// by Filter (use Filter.Category for a category).
	Stream StreamID
	// Filter narrows a $all subscription.
	Filter Filter
	// From: a $all subscription delivers events after this position
	// (Start: from the first event; End: from the head when it starts).
	From Position
	// AfterVersion: a stream subscription delivers events after this
	// version (0: from the first; EndVersion: from the current end).
	AfterVersion Version
	// CheckpointInterval is the least time between two checkpoints of a
	// filtered subscription; 0 sends one after every pass over new events
	// that matched nothing after the last delivered event.
	CheckpointInterval time.Duration
	// PageSize is how many events are read from the store at a time
	// (default 512). Nothing beyond one page is held in memory.
	PageSize int
}

// DeliveryKind tells what a Delivery carries.
type DeliveryKind uint8

// The kinds of deliveries.
const (
	// DeliveredEvent carries an event.
	DeliveredEvent DeliveryKind = iota + 1
	// DeliveredCheckpoint says that every event up to Position has been
	// considered: a filtered subscription may resume from there.
	DeliveredCheckpoint
	// DeliveredCaughtUp is sent once, when the subscription has read
	// everything committed before it went live.
	DeliveredCaughtUp
)

// Delivery is one item of a subscription.
type Delivery struct {
	Kind  DeliveryKind
	Event RecordedEvent // for DeliveredEvent
	// Position is the event's position, the checkpoint's position, or for
	// DeliveredCaughtUp the head reached when catching up.
	Position Position
}

// Subscribe delivers events as they commit: first the events already in the
// store (catch-up), then new ones (live), in position order, with no gap and
// no duplicate. It reads from the store in pages as the consumer pulls, so a
// slow consumer only falls behind; the store never buffers for it.
//
// The iterator runs until ctx ends or an error occurs; it then yields the
// error (ctx.Err() on cancellation) and stops.
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions) iter.Seq2[Delivery, error] {
	if opts.PageSize <= 0 {
		opts.PageSize = 512
	}
	if opts.Stream != "" {
		if err := ValidateStreamID(opts.Stream, s.limits.MaxStreamName); err != nil {
			return fail[Delivery](err)
		}
		if f := toFilter(opts.Filter); !f.IsZero() {
			return fail[Delivery](invalid("filter", "a stream subscription takes no filter"))
		}
		return s.subscribeStream(ctx, opts)
	}
	return s.subscribeAll(ctx, opts)
}

func (s *Store) subscribeAll(ctx context.Context, opts SubscribeOptions) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		cursor := opts.From
		if cursor == End {
			h, err := s.b.Head(ctx)
			if err != nil {
				yield(Delivery{}, err)
				return
			}
			cursor = Position(h)
		}
		filter := toFilter(opts.Filter)
		filtered := !filter.IsZero()
		reported := cursor // highest position delivered or checkpointed
		var lastCheckpoint time.Time
		caughtUp := false
		for {
			h, err := s.b.Head(ctx)
			if err != nil {
				yield(Delivery{}, err)
				return
			}
			head := Position(h)
			for cursor < head {
				q := driver.AllQuery{From: uint64(cursor) + 1, Until: uint64(head), Limit: opts.PageSize, Filter: filter}
				n := 0
				for r, err := range s.b.ReadAll(ctx, q) {
					if err != nil {
						yield(Delivery{}, err)
						return
					}
					n++
					cursor, reported = Position(r.Position), Position(r.Position)
					if !yield(Delivery{Kind: DeliveredEvent, Event: FromRecord(r), Position: cursor}, nil) {
						return
					}
				}
				if n < opts.PageSize {
					cursor = head // the read covered everything up to head
				}
			}
			if filtered && head > reported && time.Since(lastCheckpoint) >= opts.CheckpointInterval {
				reported, lastCheckpoint = head, time.Now()
				if !yield(Delivery{Kind: DeliveredCheckpoint, Position: head}, nil) {
					return
				}
			}
			if !caughtUp {
				caughtUp = true
				if !yield(Delivery{Kind: DeliveredCaughtUp, Position: head}, nil) {
					return
				}
			}
			if _, err := s.waitHead(ctx, uint64(head)); err != nil {
				yield(Delivery{}, err)
				return
			}
		}
	}
}

func (s *Store) subscribeStream(ctx context.Context, opts SubscribeOptions) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		version := opts.AfterVersion
		if version == EndVersion {
			info, err := s.b.StreamInfo(ctx, string(opts.Stream))
			switch {
			case errors.Is(err, driver.ErrStreamNotFound):
				version = 0
			case err != nil:
				yield(Delivery{}, err)
				return
			default:
				version = Version(info.Version)
			}
		}
		caughtUp := false
		for {
			h, err := s.b.Head(ctx)
			if err != nil {
				yield(Delivery{}, err)
				return
			}
			for {
				q := driver.StreamQuery{Stream: string(opts.Stream), From: uint64(version) + 1, Limit: opts.PageSize}
				n, last := 0, uint64(0)
				for r, err := range s.b.ReadStream(ctx, q) {
					if err != nil {
						yield(Delivery{}, err)
						return
					}
					n, last = n+1, r.Position
					version = Version(r.Version)
					if !yield(Delivery{Kind: DeliveredEvent, Event: FromRecord(r), Position: Position(r.Position)}, nil) {
						return
					}
				}
				// Stop at the end of the stream or once past the head of
				// this pass: a stream that writers keep appending to would
				// otherwise never let the subscription report caught up.
				if n < opts.PageSize || last >= h {
					break
				}
			}
			if !caughtUp {
				caughtUp = true
				if !yield(Delivery{Kind: DeliveredCaughtUp, Position: Position(h)}, nil) {
					return
				}
			}
			if _, err := s.waitHead(ctx, h); err != nil {
				yield(Delivery{}, err)
				return
			}
		}
	}
}

// WaitHead blocks until the head is beyond after and returns it, or returns
// ctx.Err() when ctx ends first (ErrClosed when the store closes). It uses
// the backend's Watcher when it has one, else polls every
// Options.PollInterval.
func (s *Store) WaitHead(ctx context.Context, after Position) (Position, error) {
	h, err := s.waitHead(ctx, uint64(after))
	return Position(h), err
}

// waitHead waits for the head to move beyond after, through the backend's
// Watcher when it has one, else by polling.
func (s *Store) waitHead(ctx context.Context, after uint64) (uint64, error) {
	if w, ok := s.b.(driver.Watcher); ok {
		return w.WaitHead(ctx, after)
	}
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
		h, err := s.b.Head(ctx)
		if err != nil {
			return 0, err
		}
		if h > after {
			return h, nil
		}
	}
}
