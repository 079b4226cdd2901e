package eventstore

import (
	"context"
	"iter"
	"log/slog"
	"time"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Options configure a Store. The zero value works.
type Options struct {
	Limits Limits
	// PollInterval is how often subscriptions look for new events on a
	// backend that cannot notify them (default 100ms).
	PollInterval time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Hooks observe the store, for metrics and tracing.
	Hooks Hooks
}

// Hooks are optional callbacks. They run on the caller's goroutine and must
// be fast and safe for concurrent use.
type Hooks struct {
	// OnAppend runs after every append attempt that reached the backend.
	OnAppend func(AppendInfo)
}

// AppendInfo describes one append attempt.
type AppendInfo struct {
	Streams, Events int
	Duration        time.Duration
	Duplicate       bool
	Err             error
}

// Store is an event store over a backend. It is safe for concurrent use.
type Store struct {
	b      driver.Backend
	limits Limits
	poll   time.Duration
	log    *slog.Logger
	hooks  Hooks
}

// New returns a Store over backend b. opts may be nil. Closing the Store
// closes b.
func New(b driver.Backend, opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{b: b, limits: o.Limits.withDefaults(), poll: o.PollInterval, log: o.Logger, hooks: o.Hooks}
}

// Backend returns the backend the store was opened on.
func (s *Store) Backend() driver.Backend { return s.b }

// Limits returns the limits in force.
func (s *Store) Limits() Limits { return s.limits }

// Close closes the backend. Subscriptions end with ErrClosed.
func (s *Store) Close() error { return s.b.Close() }

// Append appends events to one stream atomically, if the stream's version
// satisfies expected. When it does not, the error is a *VersionError
// (errors.Is(err, ErrWrongVersion)) and nothing is written.
//
// Events with a zero ID get a generated UUIDv7. Appending events whose IDs
// were all committed before, by one append of the same shape, writes nothing
// and returns that append's result with Duplicate set; if only some were,
// the error is an *IdempotencyError. When Append returns without error the
// events are durable.
func (s *Store) Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events ...Event) (AppendResult, error) {
	res, err := s.AppendMulti(ctx, StreamAppend{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return AppendResult{}, err
	}
	return res[0], nil
}

// AppendMulti appends to several streams in one atomic commit: every
// expected version must hold, and either all events are written or none.
// Results come in the order of appends; the events of all streams occupy
// consecutive positions.
func (s *Store) AppendMulti(ctx context.Context, appends ...StreamAppend) ([]AppendResult, error) {
	batch, err := s.prepare(appends)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := s.b.Commit(ctx, batch)
	err = mapError(err, appends)
	if s.hooks.OnAppend != nil {
		n := 0
		for _, a := range batch.Appends {
			n += len(a.Events)
		}
		s.hooks.OnAppend(AppendInfo{Streams: len(appends), Events: n, Duration: time.Since(start), Duplicate: c.Duplicate, Err: err})
	}
	if err != nil {
		return nil, err
	}
	out := make([]AppendResult, len(c.Streams))
	for i, sc := range c.Streams {
		out[i] = AppendResult{Version: Version(sc.Version), Position: Position(sc.Position), Duplicate: c.Duplicate}
	}
	return out, nil
}

// ReadStreamOptions select events of one stream. The zero value reads the
// whole stream forwards.
type ReadStreamOptions struct {
	// From is the first version returned. Forwards, 0 means the first
	// event; backwards, 0 means the last.
	From      Version
	Backwards bool
	Limit     int // at most this many events; 0 means no limit
}

// ReadStream returns the events of one stream in version order (or reverse
// order). A stream that has no events yields nothing. The iterator stops at
// the first error, which it yields.
func (s *Store) ReadStream(ctx context.Context, stream StreamID, opts ReadStreamOptions) iter.Seq2[RecordedEvent, error] {
	if err := ValidateStreamID(stream, s.limits.MaxStreamName); err != nil {
		return fail[RecordedEvent](err)
	}
	if opts.Limit < 0 {
		return fail[RecordedEvent](invalid("limit", "the limit is negative (%d)", opts.Limit))
	}
	q := driver.StreamQuery{Stream: string(stream), From: uint64(opts.From), Backwards: opts.Backwards, Limit: opts.Limit}
	return records(s.b.ReadStream(ctx, q))
}

// ReadAllOptions select events of the global log. The zero value reads
// everything forwards.
type ReadAllOptions struct {
	// From is the first position returned. Forwards, 0 means the first
	// event; backwards, 0 means the last.
	From Position
	// Until is the last position considered; 0 means the head at the
	// time of the call.
	Until     Position
	Backwards bool
	Limit     int // at most this many events; 0 means no limit
	Filter    Filter
}

// ReadAll returns events of $all in position order (or reverse order),
// keeping those that match opts.Filter. It reads up to opts.Until, or the
// head at the time of the call.
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) iter.Seq2[RecordedEvent, error] {
	if opts.Limit < 0 {
		return fail[RecordedEvent](invalid("limit", "the limit is negative (%d)", opts.Limit))
	}
	q := driver.AllQuery{From: uint64(opts.From), Until: uint64(opts.Until), Backwards: opts.Backwards, Limit: opts.Limit, Filter: toFilter(opts.Filter)}
	return records(s.b.ReadAll(ctx, q))
}

// StreamInfo describes a stream, or returns ErrStreamNotFound.
func (s *Store) StreamInfo(ctx context.Context, stream StreamID) (StreamInfo, error) {
	if err := ValidateStreamID(stream, s.limits.MaxStreamName); err != nil {
		return StreamInfo{}, err
	}
	i, err := s.b.StreamInfo(ctx, string(stream))
	if err != nil {
		return StreamInfo{}, err
	}
	return StreamInfo{Stream: stream, Version: Version(i.Version), Position: Position(i.Position), Created: i.Created, Updated: i.Updated}, nil
}

// Head returns the position of the last committed event (0 when empty).
func (s *Store) Head(ctx context.Context) (Position, error) {
	h, err := s.b.Head(ctx)
	return Position(h), err
}

func toFilter(f Filter) driver.Filter {
	return driver.Filter{StreamPrefix: f.StreamPrefix, Category: f.Category, EventTypes: f.EventTypes}
}

// FromRecord converts a backend record.
func FromRecord(r driver.Record) RecordedEvent {
	return RecordedEvent{
		Event: Event{ID: r.ID, Type: r.Type, ContentType: r.ContentType, Data: r.Data, Metadata: r.Metadata,
			CorrelationID: r.CorrelationID, CausationID: r.CausationID},
		Stream: StreamID(r.Stream), Version: Version(r.Version), Position: Position(r.Position), Time: r.Time,
	}
}

func records(seq iter.Seq2[driver.Record, error]) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		for r, err := range seq {
			if err != nil {
				yield(RecordedEvent{}, err)
				return
			}
			if !yield(FromRecord(r), nil) {
				return
			}
		}
	}
}

func fail[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

func category(stream string) string { return driver.Category(stream) }
