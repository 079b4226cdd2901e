package streamsql

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// persistent is a query started by CREATE … AS SELECT. A table query
// keeps its output materialized (for pull and push queries on it); a
// stream query appends its output to the store. Either commits its state
// and input position together after every batch.
type persistent struct {
	e      *Engine
	id     string
	q      *plan.Query
	target *plan.Source
	errs   *exec.ErrorLog
	table  *table // CREATE TABLE … AS SELECT
	// loaded is the pipeline restored from the state store with its
	// position and pending range, ready to run; the run takes it.
	loaded *loadedPipeline
	mu     struct {
		sync.Mutex
		cancel  context.CancelFunc
		done    chan struct{}
		state   string
		err     error
		pos     uint64
		changed chan struct{} // closed and replaced when pos or state moves
	}
}

func newPersistent(e *Engine, id string, q *plan.Query, target *plan.Source) *persistent {
	p := &persistent{e: e, id: id, q: q, target: target, errs: &exec.ErrorLog{}}
	if target.Table {
		p.table = newTable(newHub(e.opts.SubscriberBuffer, nil))
	}
	p.mu.state = "defined"
	p.mu.changed = make(chan struct{})
	return p
}

// startLocked starts p under the context of Run; e.mu is held.
func (e *Engine) startLocked(p *persistent) {
	ctx, cancel := context.WithCancel(e.mu.runCtx)
	done := make(chan struct{})
	p.mu.Lock()
	p.mu.cancel, p.mu.done, p.mu.state = cancel, done, "running"
	p.mu.Unlock()
	e.qwg.Add(1)
	go func() {
		defer e.qwg.Done()
		defer close(done)
		defer cancel()
		err := p.run(ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		defer p.notifyLocked()
		switch {
		case ctx.Err() != nil:
			p.mu.state = "stopped"
		case err != nil:
			p.mu.state, p.mu.err = "failed: "+err.Error(), err
			e.log.Error("streamsql: persistent query failed", "query", p.id, "err", err)
			if p.table != nil {
				p.table.fail(fmt.Errorf("streamsql: query %s failed: %w", p.id, err))
			}
		default:
			p.mu.state = "done"
		}
	}()
}

// stop ends p and waits for it.
func (p *persistent) stop() {
	p.mu.Lock()
	cancel, done := p.mu.cancel, p.mu.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if p.table != nil {
		p.table.hub.close(fmt.Errorf("%w: query %s was terminated", ErrNotFound, p.id))
	}
}

func (p *persistent) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.state
}

func (p *persistent) position() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.pos
}

type loadedPipeline struct {
	pipe    *exec.Pipeline
	groups  *exec.GroupStore // nil unless pipe keeps its groups encoded
	pos     uint64
	pending [2]uint64
}

// load restores the query's pipeline from the state store and, for a
// table, its rows, so that pull queries answer before the query runs.
func (p *persistent) load() error {
	pipe := exec.New(p.q, p.errs)
	groups := pipe.KeepEncoded(p.e.opts.DecodedGroups)
	pos, pending, err := p.e.state.Load(p.id, pipe.Load)
	if err != nil {
		return fmt.Errorf("streamsql: loading the state of query %s: %w", p.id, err)
	}
	if p.table != nil {
		if groups != nil {
			p.table.useGroups(groups)
			p.table.reset(nil, pos)
		} else {
			p.table.reset(pipe.Rows(), pos)
		}
	}
	p.mu.Lock()
	p.mu.pos = pos
	p.mu.Unlock()
	p.loaded = &loadedPipeline{pipe: pipe, groups: groups, pos: pos, pending: pending}
	return nil
}

func (p *persistent) run(ctx context.Context) error {
	e := p.e
	if p.loaded == nil {
		if err := p.load(); err != nil {
			return err
		}
	}
	l := p.loaded
	p.loaded = nil // a later run reloads from the committed state
	pipe, groups, pos, pending := l.pipe, l.groups, l.pos, l.pending
	committed := pos
	r := &runner{store: e.store, pipe: pipe, input: p.q.ReadInput(), from: eventstore.Position(pos),
		until: pending[1], batchSize: e.opts.BatchSize, idle: e.opts.IdleTimeout, name: p.id, onBatch: e.opts.Hooks.OnBatch}
	r.sink = func(ctx context.Context, out []exec.Change, pos uint64) error {
		if p.table == nil && len(out) > 0 {
			if err := e.state.SetPending(p.id, committed+1, pos); err != nil {
				return err
			}
			if err := p.append(ctx, out); err != nil {
				return err
			}
		}
		if err := e.state.Commit(p.id, pos, pipe.Save); err != nil {
			return err
		}
		committed = pos
		if p.table != nil {
			// Publishes the groups saved, if it reads them.
			p.table.applyExpired(slices.Clone(out), pipe.Expired(), pos)
		} else if groups != nil { // an aggregation makes a table today
			groups.Publish()
		}
		// Only now that the table shows the batch: WaitFor and AT POSITION
		// promise that a pull query after them reads it.
		p.mu.Lock()
		p.mu.pos = pos
		p.notifyLocked()
		p.mu.Unlock()
		return nil
	}
	return r.run(ctx)
}

// append writes a stream query's output to the store: in one atomic
// commit when the store's limits allow, else in consecutive commits that
// each stay within them. Event IDs derive from the query, the input
// position and the output's index, so that appending the same batch
// again (after a crash between an append and the commit of the position)
// is recognised as a duplicate by the store, commit by commit. A row the
// store cannot take at all (a stream name or an event beyond its limits)
// is a counted runtime error, so bad data does not stop the query.
func (p *persistent) append(ctx context.Context, out []exec.Change) error {
	lim := p.e.store.Limits()
	var appends []eventstore.StreamAppend
	index := map[eventstore.StreamID]int{}
	seq := map[int64]int{}
	n, size := 0, 0
	flush := func() error {
		if len(appends) == 0 {
			return nil
		}
		_, err := p.e.store.AppendMulti(ctx, appends...)
		appends, n, size = nil, 0, 0
		clear(index)
		return err
	}
	for i := range out {
		c := &out[i]
		stream := eventstore.StreamID(p.target.Input.Stream)
		if cat := p.target.Input.Category; cat != "" {
			k := types.Value{}
			switch {
			case len(c.KeyVals) > 0:
				k = c.KeyVals[0]
			case p.q.Key >= 0:
				k = c.Row[p.q.Key]
			}
			stream = eventstore.StreamID(cat + "-" + k.String())
		}
		k := seq[c.Offset]
		seq[c.Offset] = k + 1
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "fjord/streamsql/%s/%d/%d", p.id, c.Offset, k))
		data := []byte{'{'}
		for j, col := range p.q.Columns {
			if j > 0 {
				data = append(data, ',')
			}
			data = types.AppendJSON(data, types.NewString(col.Name), nil)
			data = append(data, ':')
			data = types.AppendJSON(data, c.Row[j], col.Type)
		}
		data = append(data, '}')
		ev := eventstore.Event{ID: id, Type: p.target.Name, Data: data}
		// What the store counts, with room for the content type it adds.
		evSize := len(data) + len(ev.Type) + 64
		if err := eventstore.ValidateStreamID(stream, lim.MaxStreamName); err != nil {
			p.errs.AddRuntime(fmt.Sprintf("position %d: output row not appended: %v", c.Offset, err))
			continue
		}
		if evSize > lim.MaxEventSize {
			p.errs.AddRuntime(fmt.Sprintf("position %d: output row not appended: %d bytes, over the event size limit of %d", c.Offset, evSize, lim.MaxEventSize))
			continue
		}
		if n+1 > lim.MaxAppendEvents || size+evSize > lim.MaxAppendSize {
			if err := flush(); err != nil {
				return err
			}
		}
		n, size = n+1, size+evSize
		j, ok := index[stream]
		if !ok {
			j = len(appends)
			index[stream] = j
			appends = append(appends, eventstore.StreamAppend{Stream: stream, Expected: eventstore.Any})
		}
		appends[j].Events = append(appends[j].Events, ev)
	}
	return flush()
}

// reset replaces the table's rows (a query restarting from saved state).
func (t *table) reset(rows []exec.Change, pos uint64) {
	t.mu.Lock()
	clear(t.mu.rows)
	clear(t.mu.byKey)
	t.mu.err = nil
	t.mu.Unlock()
	t.apply(rows, pos)
}

func (p *persistent) notifyLocked() {
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
}

// WaitFor blocks until the persistent query has considered every event up
// to pos (its state, and for a stream query its output, are committed), or
// the query fails, or ctx ends.
func (e *Engine) WaitFor(ctx context.Context, queryID string, pos eventstore.Position) error {
	e.mu.Lock()
	p := e.mu.queries[strings.ToUpper(queryID)]
	e.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: query %s", ErrNotFound, queryID)
	}
	for {
		p.mu.Lock()
		at, err, ch := p.mu.pos, p.mu.err, p.mu.changed
		p.mu.Unlock()
		switch {
		case at >= uint64(pos):
			return nil
		case err != nil:
			return fmt.Errorf("streamsql: query %s failed: %w", p.id, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
