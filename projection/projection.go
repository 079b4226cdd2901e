package projection

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/internal/headwatch"
)

// Definition describes a projection.
type Definition struct {
	// Name identifies the projection's checkpoint; it must be unique in
	// the database. Required.
	Name string
	// Filter selects the events of $all the projection sees (a category,
	// event types); the zero Filter is every event.
	Filter eventstore.Filter
	// Tables are the base names of the read-model tables Setup creates;
	// a rebuild creates them anew under shadow names and swaps them in.
	Tables []string
	// Setup creates the read model's tables and indexes, named through
	// tx.Table and tx.Index. It runs once for a new projection and once
	// per rebuild.
	Setup func(ctx context.Context, tx *Tx) error
	// Handle applies one event to the read model inside tx. Required. It
	// must be deterministic: after a failed batch the events are applied
	// again, one per transaction.
	Handle func(ctx context.Context, tx *Tx, e eventstore.RecordedEvent) error
}

// Action is what a projection does with an event its handler keeps
// failing on.
type Action uint8

// The actions.
const (
	// Stop ends Run with a *HandlerError; the event is applied again when
	// the projection runs next.
	Stop Action = iota
	// Park records the event in fjord_projection_parked, in the same
	// transaction that moves the checkpoint past it, and goes on.
	Park
)

// ErrorPolicy says what to do when the handler fails on an event.
type ErrorPolicy struct {
	// Retries is how many times the event is retried, each in a new
	// transaction after a jittered backoff, before Then; negative retries
	// for ever.
	Retries int
	// Backoff is the first delay (default 10ms); it doubles up to
	// MaxBackoff (default 5s).
	Backoff, MaxBackoff time.Duration
	// Then is what happens after the last retry.
	Then Action
}

// Options configure a Projector. The zero value works.
type Options struct {
	// MaxBatch is the most events applied in one transaction (default 1000).
	MaxBatch int
	// MaxDelay is the longest an event waits for its batch to fill; 0
	// commits as soon as the subscription has nothing more at hand.
	MaxDelay time.Duration
	// OnError is the error policy (default: stop at once).
	OnError ErrorPolicy
	// Dialect of the database (default: detected from its driver).
	Dialect Dialect
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Hooks observe the projector.
	Hooks Hooks
}

// Hooks are optional callbacks, run on the projector's goroutine.
type Hooks struct {
	// OnCommit runs after each committed transaction.
	OnCommit func(CommitInfo)
	// OnError runs when the handler or a commit fails on an event.
	OnError func(HandlerError)
}

// CommitInfo describes a committed transaction.
type CommitInfo struct {
	Events   int
	Position eventstore.Position // the checkpoint after it
	Duration time.Duration
}

// HandlerError is returned by Run when the error policy stops the
// projection.
type HandlerError struct {
	Projection string
	Event      eventstore.RecordedEvent
	Attempts   int
	Err        error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("projection %s: event %s@%d (position %d, type %s) failed after %d attempts: %v",
		e.Projection, e.Event.Stream, e.Event.Version, e.Event.Position, e.Event.Type, e.Attempts, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// ErrCheckpointMoved: the projection's checkpoint was changed by someone
// else (a rebuild swapped, or a second projector of the same name
// committed) while a batch was being applied. Run handles it by resuming
// from the stored checkpoint.
var ErrCheckpointMoved = errors.New("projection: the checkpoint moved under the projector")

// checkpoint is a projection's stored progress.
type checkpoint struct {
	position   eventstore.Position
	generation int64
}

// Projector runs one projection. Its methods are safe for concurrent use;
// run at most one Run at a time per Projector (and per name in a database).
type Projector struct {
	store   *eventstore.Store
	db      *sql.DB
	def     Definition
	opts    Options
	dialect Dialect
	stmts   *stmtCache
	applied headwatch.Head // the checkpoint this Projector's Run committed last
	mu      struct {
		sync.Mutex
		running  bool
		caughtUp bool
		lastErr  error
	}
}

// New returns a Projector of def over store, writing to db. opts may be nil.
func New(store *eventstore.Store, db *sql.DB, def Definition, opts *Options) *Projector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.OnError.Backoff <= 0 {
		o.OnError.Backoff = 10 * time.Millisecond
	}
	if o.OnError.MaxBackoff <= 0 {
		o.OnError.MaxBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := o.Dialect
	if d == DetectDialect {
		d = detectDialect(db)
	}
	return &Projector{store: store, db: db, def: def, opts: o, dialect: d, stmts: &stmtCache{db: db, dialect: d}}
}

// Name returns the projection's name.
func (p *Projector) Name() string { return p.def.Name }

// Run applies events until ctx ends (it then returns ctx.Err()) or the
// error policy stops it (a *HandlerError). On start it creates the
// projection's tables if needed and resumes from its checkpoint.
func (p *Projector) Run(ctx context.Context) error {
	if p.def.Name == "" || p.def.Handle == nil {
		return errors.New("projection: a definition needs a Name and a Handle func")
	}
	p.setRunning(true, nil)
	err := p.run(ctx)
	p.setRunning(false, err)
	p.stmts.reset()
	return err
}

func (p *Projector) run(ctx context.Context) error {
	for {
		cp, err := p.init(ctx)
		if err != nil {
			return err
		}
		p.advance(cp.position)
		err = p.follow(ctx, cp)
		if !errors.Is(err, ErrCheckpointMoved) {
			return err
		}
		p.opts.Logger.InfoContext(ctx, "projection: checkpoint moved; resuming from the stored one", "projection", p.def.Name)
		p.stmts.reset()
	}
}

// follow subscribes from cp and applies batches until an error.
func (p *Projector) follow(ctx context.Context, cp checkpoint) error {
	subCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	deliveries := make(chan eventstore.Delivery, 2*p.opts.MaxBatch)
	subErr := make(chan error, 1)
	wg.Go(func() {
		opts := eventstore.SubscribeOptions{Filter: p.def.Filter, From: cp.position, PageSize: max(512, p.opts.MaxBatch)}
		for d, err := range p.store.Subscribe(subCtx, opts) {
			if err != nil {
				subErr <- err
				return
			}
			select {
			case deliveries <- d:
			case <-subCtx.Done():
				return
			}
		}
	})
	b := &batcher{p: p, cp: cp}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var d eventstore.Delivery
		got := false
		if b.pending() {
			select {
			case d = <-deliveries:
				got = true
			default:
				if p.opts.MaxDelay <= 0 || time.Since(b.started) >= p.opts.MaxDelay {
					if err := b.flush(ctx); err != nil {
						return err
					}
					continue
				}
			}
		}
		if !got {
			var wake <-chan time.Time
			if b.pending() {
				timer.Reset(time.Until(b.started.Add(p.opts.MaxDelay)))
				wake = timer.C
			}
			select {
			case d = <-deliveries:
			case err := <-subErr:
				return err
			case <-ctx.Done():
				return ctx.Err() // the subscriber may have stopped without a word
			case <-wake:
				if err := b.flush(ctx); err != nil {
					return err
				}
				continue
			}
		}
		switch d.Kind {
		case eventstore.DeliveredEvent:
			b.add(d.Event)
		case eventstore.DeliveredCheckpoint:
			b.consider(d.Position)
		case eventstore.DeliveredCaughtUp:
			p.setCaughtUp()
		}
		if len(b.events) >= p.opts.MaxBatch {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// batcher gathers events until a flush.
type batcher struct {
	p       *Projector
	cp      checkpoint // as stored
	events  []eventstore.RecordedEvent
	upTo    eventstore.Position // everything up to here has been considered
	started time.Time
}

func (b *batcher) pending() bool { return len(b.events) > 0 || b.upTo > b.cp.position }

func (b *batcher) add(e eventstore.RecordedEvent) {
	if !b.pending() {
		b.started = time.Now()
	}
	b.events = append(b.events, e)
	b.upTo = e.Position
}

func (b *batcher) consider(pos eventstore.Position) {
	if pos > b.upTo && pos > b.cp.position {
		if !b.pending() {
			b.started = time.Now()
		}
		b.upTo = pos
	}
}

func (b *batcher) flush(ctx context.Context) error {
	cp, err := b.p.apply(ctx, target{gen: b.cp.generation, live: true}, b.cp, b.events, b.upTo)
	b.events = b.events[:0]
	if err != nil {
		return err
	}
	b.cp = cp
	b.p.advance(cp.position)
	return nil
}

// advance publishes a new checkpoint to WaitFor. After a rebuild's swap
// the checkpoint may move backwards; waiters then wait for it again.
func (p *Projector) advance(pos eventstore.Position) { p.applied.Advance(uint64(pos)) }

func (p *Projector) setRunning(running bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.running, p.mu.lastErr = running, err
	if !running {
		p.mu.caughtUp = false
	}
}

func (p *Projector) setCaughtUp() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.caughtUp = true
}

// WaitFor blocks until the projection's checkpoint has reached pos (the
// position an append returned, say), so that a query of the read model
// sees that event; it returns an error wrapping ctx.Err() when ctx ends
// first. It only sees the progress of this Projector's Run.
func (p *Projector) WaitFor(ctx context.Context, pos eventstore.Position) error {
	if pos == 0 {
		return nil
	}
	for {
		if _, err := p.applied.Wait(ctx, uint64(pos)-1); err != nil {
			return fmt.Errorf("projection %s: waiting for position %d, at %d: %w", p.def.Name, pos, p.applied.Load(), err)
		}
		if p.applied.Load() >= uint64(pos) { // not moved back by a swap meanwhile
			return nil
		}
	}
}
