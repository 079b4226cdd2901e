package streamsql

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// runner feeds a query's pipeline from an event-store subscription, in
// batches: one goroutine reads the subscription, the caller's goroutine
// processes. When no input arrives for the idle timeout, the watermark
// moves to the current time, so that windows close without new events.
type runner struct {
	store *eventstore.Store
	pipe  *exec.Pipeline
	input plan.Input
	from  eventstore.Position // deliver events after this position
	// until, when set, makes the first batch end exactly at this position
	// (a stream query re-forming the batch it was appending at a crash).
	until     uint64
	batchSize int
	idle      time.Duration
	// sink receives each batch's output (possibly empty) and the position
	// the query has considered everything up to.
	sink func(ctx context.Context, out []exec.Change, pos uint64) error
	// name and onBatch report batches (Hooks.OnBatch; may be nil).
	name    string
	onBatch func(BatchInfo)
}

// report calls the batch hook.
func (r *runner) report(start time.Time, events, changes int, pos uint64) {
	if r.onBatch != nil {
		r.onBatch(BatchInfo{Query: r.name, Events: events, Changes: changes, Position: pos, Duration: time.Since(start)})
	}
}

// noStreamTime is below any stream time a query with input has.
const noStreamTime = -1 << 61

type item struct {
	ev  exec.Event
	pos uint64 // a checkpoint when ev.Position is 0
}

func subscribeOptions(in plan.Input, from eventstore.Position) eventstore.SubscribeOptions {
	o := eventstore.SubscribeOptions{From: from}
	o.Filter.EventTypes = in.EventTypes
	switch {
	case in.Category != "":
		o.Filter.Category = in.Category
	case in.Stream != "":
		// A $all subscription narrowed to the stream (and checked exactly by
		// the pipeline) reports checkpoints, which AT POSITION waits on.
		o.Filter.StreamPrefix = in.Stream
	}
	return o
}

func (r *runner) run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	items := make(chan item, 2*r.batchSize)
	g.Go(func() error { return r.read(ctx, items) })
	g.Go(func() error {
		err := r.process(ctx, items)
		if err == nil {
			err = errDone
		}
		return err
	})
	err := g.Wait()
	if err == errDone {
		return nil
	}
	return err
}

func (r *runner) read(ctx context.Context, items chan<- item) error {
	for d, err := range r.store.Subscribe(ctx, subscribeOptions(r.input, r.from)) {
		if err != nil {
			return err
		}
		var it item
		switch d.Kind {
		case eventstore.DeliveredEvent:
			e := d.Event
			it.ev = exec.Event{Data: e.Data, Stream: string(e.Stream), Version: int64(e.Version),
				Position: int64(e.Position), Type: e.Type, Time: e.Time.UnixMilli()}
		default:
			it.pos = uint64(d.Position)
		}
		select {
		case items <- it:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

func (r *runner) process(ctx context.Context, items <-chan item) error {
	var idleC <-chan time.Time
	var timer *time.Timer
	if r.idle > 0 {
		timer = time.NewTimer(r.idle)
		defer timer.Stop()
		idleC = timer.C
	}
	pos := uint64(r.from)
	batch := make([]exec.Event, 0, r.batchSize)
	var carry *item
	// While the input is idle, stream time moves on with the wall clock
	// from where the last input left it.
	lastWall, lastStream := time.Now(), r.pipe.StreamTime()
	for {
		var first item
		if carry != nil {
			first, carry = *carry, nil
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-idleC:
				start := time.Now()
				var out []exec.Change
				if lastStream > noStreamTime {
					out = r.pipe.Watermark(lastStream + start.Sub(lastWall).Milliseconds())
				}
				if err := r.sink(ctx, out, pos); err != nil {
					return err
				}
				r.report(start, 0, len(out), pos)
				if r.pipe.Done() {
					return nil
				}
				timer.Reset(r.idle)
				continue
			case first = <-items:
			}
		}
		batch = batch[:0]
		add := func(it item) {
			if it.ev.Position > 0 {
				batch = append(batch, it.ev)
				pos = max(pos, uint64(it.ev.Position))
			} else {
				pos = max(pos, it.pos)
			}
		}
		add(first)
		// Take what is ready, up to a batch; a batch being re-formed after a
		// crash takes exactly the events up to r.until, waiting for them.
	fill:
		for len(batch) < r.batchSize || r.until > pos {
			if r.until > 0 && pos >= r.until {
				break
			}
			var it item
			if r.until > pos {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case it = <-items:
				}
			} else {
				select {
				case it = <-items:
				default:
					break fill
				}
			}
			if r.until > 0 && it.ev.Position > 0 && uint64(it.ev.Position) > r.until {
				carry = &it
				break
			}
			add(it)
		}
		if r.until > 0 && pos >= r.until {
			pos = max(pos, r.until)
			r.until = 0
		}
		start := time.Now()
		out := r.pipe.Process(batch)
		r.pipe.Advance(int64(pos))
		if err := r.sink(ctx, out, pos); err != nil {
			return err
		}
		r.report(start, len(batch), len(out), pos)
		if r.pipe.Done() {
			return nil
		}
		if len(batch) > 0 {
			lastWall, lastStream = time.Now(), r.pipe.StreamTime()
		}
		if timer != nil {
			timer.Reset(r.idle)
		}
	}
}
