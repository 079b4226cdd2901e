package streamsql

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// QueryOptions tune Query. The zero value works.
type QueryOptions struct {
	// FromStart runs a push query over its sources from their first
	// event, privately. By default a push query starts at the head of the
	// store (events committed after it starts), and identical push
	// queries share one running query.
	FromStart bool
	// Started, when set, is called once on the iterating goroutine when a
	// push query has joined its running query, before its first change:
	// every event committed after the call reaches it. A server sends its
	// response headers there, so that a client that sees them may append
	// and expect the change. It is not called for pull queries, nor when
	// the query fails to start.
	Started func()
}

// Query runs a SELECT and yields its output.
//
// A pull query (no EMIT clause) reads the current rows of a materialized
// table (CREATE TABLE … AS SELECT), looking up the key when the WHERE
// clause fixes it; with AT POSITION p it first waits until the table
// reflects every event up to p (read your writes). It yields the rows as
// inserts and ends.
//
// A push query (EMIT CHANGES or EMIT FINAL) yields its changelog until ctx
// ends (the last item is then ctx.Err()), its LIMIT is reached, or it
// fails. It starts when first pulled, at the head of the store (events
// committed later), and identical push queries without a LIMIT share one
// running query; a late subscriber to an aggregation first gets its
// current rows. With
// QueryOptions.FromStart it runs privately from the first event. On a
// materialized table it yields the table's current rows, then their
// changes. A subscriber that falls Options.SubscriberBuffer batches
// behind is ended with ErrSlowSubscriber.
//
// Subscribers of one push query share its changes, converted once: Row,
// Old and the values in them are read-only (see Change).
//
// Errors in the statement are *Error values with a position.
func (e *Engine) Query(ctx context.Context, sql string, opts *QueryOptions) iter.Seq2[Change, error] {
	var o QueryOptions
	if opts != nil {
		o = *opts
	}
	stmt, err := parse.Parse(sql)
	if err != nil {
		return fail(err)
	}
	sel, ok := stmt.(*parse.Select)
	if !ok {
		return fail(&Error{Pos: stmt.Position(), Msg: "Query runs a SELECT; use Exec for other statements"})
	}
	e.mu.Lock()
	q, err := plan.Select(sel, e.catalogLocked())
	var p *persistent
	if err == nil && q.Source.Materialized {
		p = e.mu.queries[q.Source.Query]
		if p == nil {
			err = fmt.Errorf("%w: the query that materializes %s", ErrNotFound, q.Source.Name)
		}
	}
	e.mu.Unlock()
	switch {
	case err != nil:
		return fail(err)
	case q.Pull:
		return e.pull(ctx, q, p)
	case p != nil:
		return e.pushTable(ctx, q, p)
	}
	return e.push(ctx, q, o)
}

func fail(err error) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) { yield(Change{}, err) }
}

func (e *Engine) pull(ctx context.Context, q *plan.Query, p *persistent) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		if q.AtPosition > 0 {
			if err := p.table.waitFor(ctx, uint64(q.AtPosition)); err != nil {
				yield(Change{}, err)
				return
			}
		}
		rows := p.table.lookup(q.PullKey, q.Source.Window != nil)
		for i := range rows {
			rows[i].Row = exec.TableRow(&rows[i], rows[i].Row)
		}
		out := exec.NewTransform(q, &exec.ErrorLog{}).Apply(rows)
		cols := columnsOf(q.Columns)
		for i := range out {
			if !yield(convertChange(&out[i], cols, q.Columns), nil) {
				return
			}
		}
	}
}

// pushTable follows a materialized table: its rows, then its changes.
// Each subscriber projects and converts the table's changes itself.
func (e *Engine) pushTable(ctx context.Context, q *plan.Query, p *persistent) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		h := p.table.hub
		sub := h.subscribe(p.table.snapshot)
		defer h.unsubscribe(sub, nil)
		tr := exec.NewTransform(q, p.errs)
		cols := columnsOf(q.Columns)
		consume(ctx, h, sub, func(b *batch, yield func(Change, error) bool) bool {
			cs := slices.Clone(b.raw)
			for i := range cs {
				cs[i].Row = exec.TableRow(&cs[i], cs[i].Row)
				cs[i].Old = exec.TableRow(&cs[i], cs[i].Old)
			}
			for _, c := range tr.Apply(cs) {
				if !yield(convertChange(&c, cols, q.Columns), nil) {
					return false
				}
			}
			return !tr.Done()
		}, yield)
	}
}

// consume yields a subscriber's batches, through each, until the
// subscription ends, ctx ends, each returns false or the consumer stops.
// It waits on the subscriber's channel alone (ctx ending unsubscribes
// it), so that waking for a batch costs one channel receive.
func consume(ctx context.Context, h *hub, sub *subscriber, each func(*batch, func(Change, error) bool) bool, yield func(Change, error) bool) {
	stop := context.AfterFunc(ctx, func() { h.unsubscribe(sub, ctx.Err()) })
	defer stop()
	for {
		b, ok := <-sub.ch
		if !ok {
			if err := sub.err(); err != nil {
				yield(Change{}, err)
			}
			return
		}
		if err := ctx.Err(); err != nil {
			yield(Change{}, err)
			return
		}
		if !each(b, yield) {
			return
		}
	}
}

// yieldShared yields a converted batch; its changes are shared by every
// subscriber of the query.
func yieldShared(b *batch, yield func(Change, error) bool) bool {
	for i := range b.out {
		if !yield(b.out[i], nil) {
			return false
		}
	}
	return true
}

// pushQuery is a running push query and its subscribers.
type pushQuery struct {
	id     string // PUSH_<n>, for SHOW QUERIES and Errors
	sql    string
	key    string
	hub    *hub
	table  *table // aggregations: current rows, for subscribers that join late
	cancel context.CancelFunc
	errs   *exec.ErrorLog
	pos    atomic.Uint64
}

func (e *Engine) push(ctx context.Context, q *plan.Query, o QueryOptions) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		pq, sub, err := e.joinPush(q, o)
		if err != nil {
			yield(Change{}, err)
			return
		}
		defer e.leavePush(pq, sub)
		if o.Started != nil {
			o.Started()
		}
		consume(ctx, pq.hub, sub, yieldShared, yield)
	}
}

// joinPush subscribes to the running query with q's text, starting it if
// needed (always, for FromStart or a LIMIT).
func (e *Engine) joinPush(q *plan.Query, o QueryOptions) (*pushQuery, *subscriber, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return nil, nil, ErrClosed
	}
	key := q.Text
	if o.FromStart || q.Limit > 0 {
		// A LIMIT counts one subscriber's changes: such a query runs
		// privately.
		key = ""
	}
	if pq := e.mu.shared[key]; key != "" && pq != nil {
		var snap func() []exec.Change
		if pq.table != nil {
			snap = pq.table.snapshot
		}
		return pq, pq.hub.subscribe(snap), nil
	}
	from := eventstore.Start
	if !o.FromStart {
		h, err := e.store.Head(e.mu.tctx)
		if err != nil {
			return nil, nil, err
		}
		from = h
	}
	e.mu.pushSeq++
	cols := columnsOf(q.Columns)
	convert := func(cs []exec.Change) []Change { return convertChanges(cs, cols, q.Columns) }
	pq := &pushQuery{id: fmt.Sprintf("PUSH_%d", e.mu.pushSeq), sql: q.Text, key: key, hub: newHub(e.opts.SubscriberBuffer, convert), errs: &exec.ErrorLog{}}
	e.mu.push[pq.id] = pq
	if q.Agg != nil {
		pq.table = newTable(pq.hub)
	}
	sub := pq.hub.subscribe(nil)
	ctx, cancel := context.WithCancel(e.mu.tctx)
	pq.cancel = cancel
	if key != "" {
		e.mu.shared[key] = pq
	}
	r := &runner{store: e.store, pipe: exec.New(q, pq.errs), input: q.ReadInput(), from: from,
		batchSize: e.opts.BatchSize, idle: e.opts.IdleTimeout, name: "push", onBatch: e.opts.Hooks.OnBatch}
	r.sink = func(ctx context.Context, out []exec.Change, pos uint64) error {
		pq.pos.Store(pos)
		if pq.table != nil {
			pq.table.apply(slices.Clone(out), pos)
		} else {
			pq.hub.publish(out) // converted during the call, not retained
		}
		return nil
	}
	e.twg.Add(1)
	go func() {
		defer e.twg.Done()
		err := r.run(ctx)
		if ctx.Err() != nil {
			err = nil
			if e.mu.tctx.Err() != nil {
				err = ErrClosed
			}
		}
		e.mu.Lock()
		if e.mu.shared[key] == pq {
			delete(e.mu.shared, key)
		}
		delete(e.mu.push, pq.id)
		e.mu.Unlock()
		pq.hub.close(err)
		cancel()
	}()
	return pq, sub, nil
}

// leavePush unsubscribes; the last subscriber to leave stops the query.
func (e *Engine) leavePush(pq *pushQuery, sub *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pq.hub.unsubscribe(sub, nil)
	if pq.hub.count() == 0 {
		if e.mu.shared[pq.key] == pq {
			delete(e.mu.shared, pq.key)
		}
		pq.cancel()
	}
}

// RunningPushQueries returns how many shared push queries are running.
func (e *Engine) RunningPushQueries() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.mu.shared)
}

// Split splits a script into statements (separated by ';'), each in
// canonical SQL, or returns the first syntax error (an *Error).
func Split(script string) ([]string, error) {
	stmts, err := parse.ParseAll(script)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = parse.String(s)
	}
	return out, nil
}

// IsQuery reports whether a statement is a SELECT (to run with Query).
func IsQuery(stmt string) bool {
	s, err := parse.Parse(stmt)
	if err != nil {
		return false
	}
	_, ok := s.(*parse.Select)
	return ok
}
