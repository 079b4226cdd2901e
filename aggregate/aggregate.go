package aggregate

import (
	"context"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"log/slog"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

// ErrTooManyConflicts: every attempt of a Handle lost the race to another
// writer. The error is a *ConflictError.
var ErrTooManyConflicts = errors.New("aggregate: too many concurrency conflicts")

// ConflictError is returned by Handle after its last attempt failed on a
// concurrency conflict.
type ConflictError struct {
	Stream   eventstore.StreamID
	Attempts int
	Last     error // the last *eventstore.VersionError
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("aggregate: stream %q: gave up after %d attempts that all conflicted with other writers: %v", e.Stream, e.Attempts, e.Last)
}

// Is makes errors.Is(err, ErrTooManyConflicts) true.
func (e *ConflictError) Is(target error) bool { return target == ErrTooManyConflicts }

// Unwrap returns the last version error, so that errors.Is(err,
// eventstore.ErrWrongVersion) holds too.
func (e *ConflictError) Unwrap() error { return e.Last }

// Definition describes a kind of aggregate whose state is S.
type Definition[S any] struct {
	// Category names the aggregate's streams: the aggregate with ID "42"
	// lives in stream "<Category>-42". Required.
	Category string
	// Initial returns the state of an aggregate with no events; nil means
	// the zero S. It must return a fresh value on every call when S is a
	// pointer or holds maps or slices.
	Initial func() S
	// Evolve returns the state after event e. Required. It may modify and
	// return s. (For a type with an Apply method, use EvolveByApply.)
	Evolve func(s S, e eventstore.RecordedEvent) S
	// Marshal and Unmarshal encode snapshots; nil means encoding/json.
	Marshal   func(S) ([]byte, error)
	Unmarshal func(data []byte, s *S) error
}

// Applier is a state that evolves in place.
type Applier interface {
	Apply(eventstore.RecordedEvent)
}

// EvolveByApply is an Evolve function for a state (typically a pointer)
// with an Apply method.
func EvolveByApply[S Applier](s S, e eventstore.RecordedEvent) S {
	s.Apply(e)
	return s
}

// Options configure a Repository. The zero value works.
type Options struct {
	// MaxAttempts bounds the attempts of one Handle (default 10).
	MaxAttempts int
	// Backoff is the base delay before the second attempt (default 1ms);
	// it doubles with each attempt up to MaxBackoff (default 100ms), and
	// each delay is drawn at random between zero and that bound.
	Backoff, MaxBackoff time.Duration
	// SnapshotEvery saves a snapshot each time an aggregate's version
	// crosses a multiple of it; 0 disables snapshots.
	SnapshotEvery int
	// Snapshots stores snapshots; nil stores them in the event store, in
	// stream "<Category>snapshot-<id>" (see StreamSnapshots).
	Snapshots SnapshotStore
	// Logger receives diagnostics (failed snapshot saves); nil discards them.
	Logger *slog.Logger
	// Hooks observe the repository.
	Hooks Hooks
}

// Hooks are optional callbacks, run on the caller's goroutine.
type Hooks struct {
	// OnRetry runs before an attempt is retried after a conflict.
	OnRetry func(RetryInfo)
}

// RetryInfo describes a conflict that will be retried.
type RetryInfo struct {
	Stream  eventstore.StreamID
	Attempt int // the attempt that conflicted, from 1
	Delay   time.Duration
	Err     error
}

// Repository loads and changes aggregates of one Definition. It is safe for
// concurrent use.
type Repository[S any] struct {
	store *eventstore.Store
	def   Definition[S]
	opts  Options
}

// New returns a Repository over store. opts may be nil.
func New[S any](store *eventstore.Store, def Definition[S], opts *Options) *Repository[S] {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Snapshots == nil {
		o.Snapshots = &StreamSnapshots{Store: store}
	}
	if def.Initial == nil {
		def.Initial = func() S { var s S; return s }
	}
	return &Repository[S]{store: store, def: def, opts: o}
}

// Stream returns the stream of the aggregate with this ID.
func (r *Repository[S]) Stream(id string) eventstore.StreamID {
	return eventstore.StreamID(r.def.Category + "-" + id)
}

// Loaded is an aggregate's state at a version.
type Loaded[S any] struct {
	State    S
	Version  eventstore.Version  // 0: the aggregate has no events
	Position eventstore.Position // of the last event applied; 0 if none
	// FromSnapshot is the version of the snapshot the load started from
	// (0: none).
	FromSnapshot eventstore.Version
}

// Load returns the aggregate's current state: the latest snapshot, when
// snapshots are on and one exists, plus the events after it.
func (r *Repository[S]) Load(ctx context.Context, id string) (Loaded[S], error) {
	stream := r.Stream(id)
	l := Loaded[S]{State: r.def.Initial()}
	if r.opts.SnapshotEvery > 0 {
		snap, ok, err := r.opts.Snapshots.LoadSnapshot(ctx, stream)
		if err != nil {
			return Loaded[S]{}, fmt.Errorf("aggregate: loading the snapshot of %q: %w", stream, err)
		}
		if ok {
			if err := r.unmarshal(snap.Data, &l.State); err != nil {
				return Loaded[S]{}, fmt.Errorf("aggregate: decoding the snapshot of %q at version %d: %w", stream, snap.Version, err)
			}
			l.Version, l.Position, l.FromSnapshot = snap.Version, snap.Position, snap.Version
		}
	}
	for e, err := range r.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: l.Version + 1}) {
		if err != nil {
			return Loaded[S]{}, fmt.Errorf("aggregate: reading %q: %w", stream, err)
		}
		l.State = r.def.Evolve(l.State, e)
		l.Version, l.Position = e.Version, e.Position
	}
	return l, nil
}

// Result is the outcome of Handle.
type Result[S any] struct {
	Loaded[S]                    // the state after the new events
	Events    []eventstore.Event // what decide returned, as appended
	Attempts  int                // how many attempts it took, from 1
}

// Handle loads the aggregate, calls decide with its state and appends the
// events decide returns, expecting the version it loaded. When another
// writer appended in between, it waits a jittered backoff and tries again
// from a fresh load, up to Options.MaxAttempts attempts; then it returns a
// *ConflictError. An error from decide is returned as it is and nothing is
// appended; so is any other error. decide may run several times and must
// not have side effects beyond returning events. When decide returns no
// events, Handle appends nothing and returns the loaded state.
func (r *Repository[S]) Handle(ctx context.Context, id string, decide func(S) ([]eventstore.Event, error)) (Result[S], error) {
	stream := r.Stream(id)
	var lastErr error
	for attempt := 1; attempt <= r.opts.MaxAttempts; attempt++ {
		res, err := r.attempt(ctx, id, decide)
		if !errors.Is(err, eventstore.ErrWrongVersion) {
			res.Attempts = attempt
			return res, err
		}
		lastErr = err
		if attempt == r.opts.MaxAttempts {
			break
		}
		delay := r.backoff(attempt)
		if r.opts.Hooks.OnRetry != nil {
			r.opts.Hooks.OnRetry(RetryInfo{Stream: stream, Attempt: attempt, Delay: delay, Err: err})
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return Result[S]{}, err
		}
	}
	return Result[S]{}, &ConflictError{Stream: stream, Attempts: r.opts.MaxAttempts, Last: lastErr}
}

func (r *Repository[S]) attempt(ctx context.Context, id string, decide func(S) ([]eventstore.Event, error)) (Result[S], error) {
	l, err := r.Load(ctx, id)
	if err != nil {
		return Result[S]{}, err
	}
	// decide gets the loaded state; keep its version to evolve afterwards.
	events, err := decide(l.State)
	if err != nil || len(events) == 0 {
		return Result[S]{Loaded: l}, err
	}
	stream := r.Stream(id)
	ar, err := r.store.Append(ctx, stream, eventstore.Exact(l.Version), events...)
	if err != nil {
		return Result[S]{}, err
	}
	before := l.Version
	first := ar.Position - eventstore.Position(len(events)) + 1
	now := time.Now()
	for i, e := range events {
		l.State = r.def.Evolve(l.State, eventstore.RecordedEvent{Event: e, Stream: stream,
			Version: before + eventstore.Version(i) + 1, Position: first + eventstore.Position(i), Time: now})
	}
	l.Version, l.Position = ar.Version, ar.Position
	if n := eventstore.Version(r.opts.SnapshotEvery); n > 0 && ar.Version/n > before/n {
		r.saveSnapshot(ctx, stream, l)
	}
	return Result[S]{Loaded: l, Events: events}, nil
}

// saveSnapshot saves l; a failure is logged, not returned: the events are
// committed, and the next snapshot will do.
func (r *Repository[S]) saveSnapshot(ctx context.Context, stream eventstore.StreamID, l Loaded[S]) {
	data, err := r.marshal(l.State)
	if err == nil {
		err = r.opts.Snapshots.SaveSnapshot(ctx, stream, Snapshot{Version: l.Version, Position: l.Position, Data: data})
	}
	if err != nil {
		r.opts.Logger.WarnContext(ctx, "aggregate: saving a snapshot failed", "stream", stream, "version", l.Version, "err", err)
	}
}

func (r *Repository[S]) backoff(attempt int) time.Duration {
	return backoff.Full(r.opts.Backoff, r.opts.MaxBackoff, attempt)
}
