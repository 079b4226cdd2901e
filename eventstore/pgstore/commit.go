package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// A request is one Commit call waiting for the committer.
type request struct {
	batch *driver.Batch
	races int // how many of its transactions lost a race; the committer's

	state atomic.Int32 // queued, taken (by the committer) or abandoned (by the caller)
	done  chan outcome // buffered; the committer sends once, after taking
}

const (
	queued int32 = iota
	taken
	abandoned
)

type outcome struct {
	c   driver.Committed
	err error
}

// Commit implements driver.Backend. It queues the batch for the store's
// committer, which writes it in one transaction with the batches queued
// beside it (group commit), and waits for the outcome.
//
// When ctx ends before the committer took the batch, nothing is written and
// Commit returns ctx.Err(). When it ends later, or the connection is lost
// while the transaction commits, the error wraps driver.ErrUnknownOutcome:
// retrying with the same event IDs settles it.
func (s *Store) Commit(ctx context.Context, b *driver.Batch) (driver.Committed, error) {
	if s.closed.Load() {
		return driver.Committed{}, driver.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return driver.Committed{}, err
	}
	r := &request{batch: b, done: make(chan outcome, 1)}
	select {
	case s.queue <- r:
	case <-s.stop:
		return driver.Committed{}, driver.ErrClosed
	case <-ctx.Done():
		return driver.Committed{}, ctx.Err()
	}
	select {
	case o := <-r.done:
		return o.c, o.err
	case <-s.stopped:
		if r.state.CompareAndSwap(queued, abandoned) {
			return driver.Committed{}, driver.ErrClosed
		}
		o := <-r.done // taken before the committer ended, so answered
		return o.c, o.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return driver.Committed{}, ctx.Err()
		}
		select {
		case o := <-r.done:
			return o.c, o.err
		default:
		}
		return driver.Committed{}, fmt.Errorf("pgstore: commit: %w: %w", driver.ErrUnknownOutcome, ctx.Err())
	}
}

// maxInFlight is how many commit transactions of one Store may be in
// progress at once while no other node commits.
const maxInFlight = 2

// maxRaces is how many times a request is written again after its
// transaction lost a race before it fails.
const maxRaces = 100

// soloAfter is how long a committer commits locked after it saw another
// node's commit, before it commits optimistically again: optimistic
// transactions of several nodes at once mostly fail their head check, and
// sometimes deadlock (which PostgreSQL breaks after deadlock_timeout).
const soloAfter = time.Second

// committer is the state of the commit loop, owned by its goroutine.
type committer struct {
	s        *Store
	ctx      context.Context
	inflight []*flight  // oldest first
	pending  []*request // taken, waiting for their streams' commits to end, or retried
	head     uint64     // the last position this committer knows committed
	time     time.Time  // the time of that commit, or later
	solo     bool       // no other node committed for soloAfter: commit optimistically
	foreign  time.Time  // when it last saw another node's commit
	failed   bool       // the last transaction that ended failed
}

// flight is a group whose commit transaction is in progress.
type flight struct {
	group   []*request
	outs    []outcome
	streams map[string]bool
	last    uint64 // the last position it writes
	slot    int64  // key of the advisory lock it holds while it runs, or 0
	prev    int64  // key of the slot it waits for before its head check, or 0
	time    time.Time
	done    chan struct{} // closed when err is set
	err     error
}

// commitLoop is the committer: it takes the queued requests, as many as fit
// in MaxGroupEvents, and commits them in one transaction, until Close.
// While one group's transaction commits, it already reads and decides the
// next group, whose transaction writes its rows beside it and then waits
// for the commit lock (see the package doc).
func (s *Store) commitLoop(ctx context.Context) {
	defer s.wg.Done()
	defer close(s.stopped)
	c := &committer{s: s, ctx: ctx, head: s.head.Load()}
	for {
		if len(c.pending) == 0 {
			var first *request
			switch {
			case len(c.inflight) == 0:
				select {
				case first = <-s.queue:
				case <-s.stop:
					c.stop()
					return
				}
			case len(c.inflight) < c.depth():
				select {
				case first = <-s.queue:
				case <-c.inflight[0].done:
					c.finishOldest()
					continue
				case <-s.stop:
					c.stop()
					return
				}
			default:
				<-c.inflight[0].done
				c.finishOldest()
				continue
			}
			if !first.state.CompareAndSwap(queued, taken) {
				continue // abandoned by its caller
			}
			c.pending = append(c.pending, first)
		} else if len(c.inflight) >= c.depth() {
			<-c.inflight[0].done
			c.finishOldest()
			continue
		}
		group := c.collect()
		if len(group) == 0 {
			// Every request waits for a stream of a transaction in progress.
			<-c.inflight[0].done
			c.finishOldest()
			continue
		}
		c.start(group)
	}
}

// freeSlot returns a slot key that no transaction in progress holds or
// will wait for.
func (c *committer) freeSlot() int64 {
	for _, k := range c.s.slotKeys {
		used := false
		for _, f := range c.inflight {
			used = used || k == f.slot || k == f.prev
		}
		if !used {
			return k
		}
	}
	panic("pgstore: no free commit slot") // there are 2*maxInFlight-1 of them
}

func (c *committer) depth() int {
	if c.solo {
		return maxInFlight
	}
	return 1
}

// stop ends the committer: the transactions in progress end and are
// answered, and the requests not yet written get ErrClosed.
func (c *committer) stop() {
	for len(c.inflight) > 0 {
		<-c.inflight[0].done
		c.finishOldest()
	}
	for _, r := range c.pending {
		r.done <- outcome{err: driver.ErrClosed}
	}
	c.pending = nil
	c.s.failQueued()
}

// collect forms the next group: the pending requests first, then the
// queued ones, as many as fit in MaxGroupEvents. A request that touches a
// stream of a transaction in progress stays pending: its expected version
// depends on that transaction's outcome.
func (c *committer) collect() []*request {
	busy := map[string]bool{}
	for _, f := range c.inflight {
		for st := range f.streams {
			busy[st] = true
		}
	}
	var group, wait []*request
	events := 0
	full := false
	consider := func(r *request) {
		if full {
			wait = append(wait, r)
			return
		}
		for _, a := range r.batch.Appends {
			if busy[a.Stream] {
				wait = append(wait, r)
				return
			}
		}
		group = append(group, r)
		if events += batchEvents(r.batch); events >= c.s.opts.MaxGroupEvents {
			full = true
		}
	}
	for _, r := range c.pending {
		consider(r)
	}
	for !full {
		r := c.s.next()
		if r == nil {
			break
		}
		if r.state.CompareAndSwap(queued, taken) {
			consider(r)
		}
	}
	c.pending = wait
	return group
}

// next returns the next queued request without waiting, or nil.
func (s *Store) next() *request {
	select {
	case r := <-s.queue:
		return r
	default:
		return nil
	}
}

func (s *Store) failQueued() {
	for r := s.next(); r != nil; r = s.next() {
		if r.state.CompareAndSwap(queued, taken) {
			r.done <- outcome{err: driver.ErrClosed}
		}
	}
}

func batchEvents(b *driver.Batch) int {
	n := 0
	for _, a := range b.Appends {
		n += len(a.Events)
	}
	return n
}

// start reads the state the group depends on, decides each request, and
// starts the group's transaction; a group that writes nothing is answered
// at once. There are two ways to commit (see the package doc):
//
//   - locked, while other nodes commit too: the transaction takes the
//     commit lock first, then reads the head, the streams' versions and
//     the event IDs, and writes the rows at head+1…;
//   - optimistic, while this node commits alone: the transaction reads the
//     state without the commit lock and writes its rows after the head it
//     read, or after the rows of this node's transaction still in progress;
//     only then does it take the commit lock, without waiting for it, and
//     check_head fails it (a race, retried) unless the last committed row
//     is just before its first. So the next group's rows are written while
//     the previous group commits.
func (c *committer) start(group []*request) {
	s := c.s
	pc, err := s.pool.Acquire(c.ctx)
	if err != nil {
		c.answer(group, nil, fmt.Errorf("pgstore: commit: %w", describe(err)))
		return
	}
	locked := !c.solo
	// An optimistic transaction holds the lock of its slot from its start;
	// the one started after it checks the head only once that slot is
	// free, so that the two commit in the order they were decided.
	var slot, prev int64
	if !locked {
		if n := len(c.inflight); n > 0 {
			prev = c.inflight[n-1].slot
		}
		slot = c.freeSlot()
	}
	st, err := s.readState(c.ctx, pc.Conn(), group, locked, slot)
	if err != nil {
		abort(pc.Conn())
		pc.Release()
		c.answer(group, nil, fmt.Errorf("pgstore: commit: %w", describe(err)))
		return
	}
	// The head this group follows: the database's, or that of this node's
	// transaction in progress, which the database does not show yet.
	known := c.head
	if n := len(c.inflight); n > 0 {
		known = c.inflight[n-1].last
		st.time = later(st.time, c.inflight[n-1].time)
	}
	if st.head > known || (len(c.inflight) == 0 && st.head != c.head) {
		c.foreign = time.Now() // another node committed
	}
	c.solo = time.Since(c.foreign) >= soloAfter
	if !locked {
		st.head = max(st.head, known)
	}
	st.time = later(st.time, c.time)
	first := st.head + 1
	outs, rows := st.decide(group)
	if rows.n == 0 {
		abort(pc.Conn())
		pc.Release()
		c.answer(group, outs, nil)
		return
	}
	f := &flight{group: group, outs: outs, streams: map[string]bool{}, last: st.head, slot: slot, prev: prev, time: st.time, done: make(chan struct{})}
	for _, r := range group {
		for _, a := range r.batch.Appends {
			f.streams[a.Stream] = true
		}
	}
	b := &pgx.Batch{}
	b.Queue(s.sql.insert, rows.positions, rows.streams, rows.versions, rows.categories, rows.ids, rows.types,
		rows.contentTypes, rows.data, rows.metadata, rows.correlations, rows.causations, st.time)
	if !locked {
		if prev != 0 {
			b.Queue(s.sql.lock, prev)
		}
		b.Queue(s.sql.checkHead, s.key, int64(first), st.time)
	}
	b.Queue("SELECT pg_notify($1, $2)", s.notify, strconv.FormatUint(st.head, 10))
	b.Queue("COMMIT")
	c.inflight = append(c.inflight, f)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(f.done)
		defer pc.Release()
		f.err = s.write(c.ctx, pc, b)
	}()
}

// write runs a group's transaction.
func (s *Store) write(ctx context.Context, pc *pgxpool.Conn, b *pgx.Batch) error {
	conn := pc.Conn()
	if s.beforeCommit != nil {
		if err := s.beforeCommit(ctx, conn); err != nil {
			abort(conn)
			return fmt.Errorf("pgstore: commit: %w", err)
		}
	}
	if err := execBatch(ctx, conn, b); err != nil {
		abort(conn)
		if errRetry(err) {
			return &retryError{err}
		}
		return commitError(err, true)
	}
	return nil
}

// retryError is a group's transaction that failed because it ran beside
// another one (another node's, or the same node's that failed): nothing
// was written, and the group is decided and written again.
type retryError struct{ err error }

func (e *retryError) Error() string { return "pgstore: commit raced another: " + e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// errRetry reports whether err means the transaction lost a race and
// wrote nothing: the head moved (the check's SQLSTATE FJ001), a row that
// another transaction committed first (a unique violation) or a deadlock
// between two nodes' transactions, which PostgreSQL breaks.
func errRetry(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "FJ001" || pe.Code == "23505" || pe.Code == "40P01")
}

// finishOldest answers the oldest transaction in progress, which has
// ended, or queues its requests again when it lost a race.
func (c *committer) finishOldest() {
	f := c.inflight[0]
	c.inflight = c.inflight[1:]
	var re *retryError
	switch {
	case errors.As(f.err, &re):
		if !c.failed {
			// Another node's commit came first (or, after a failure of
			// this node's transaction, the failure: the next is not a race).
			c.foreign = time.Now()
		}
		c.solo = false
		c.failed = true
		var again []*request
		for _, r := range f.group {
			if r.races++; r.races > maxRaces {
				r.done <- outcome{err: fmt.Errorf("pgstore: commit: gave up after %d races: %w", maxRaces, re.err)}
			} else {
				again = append(again, r)
			}
		}
		c.pending = append(again, c.pending...)
	case f.err != nil:
		c.failed = true
		c.answer(f.group, nil, f.err)
	default:
		c.failed = false
		c.head, c.time = f.last, f.time
		c.s.advance(f.last)
		c.answer(f.group, f.outs, nil)
	}
}

func (c *committer) answer(group []*request, outs []outcome, err error) {
	for i, r := range group {
		if err != nil {
			r.done <- outcome{err: err}
		} else {
			r.done <- outs[i]
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// execBatch sends b and returns its first error.
func execBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	br := conn.SendBatch(ctx, b)
	var first error
	for range b.Len() {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	return errors.Join(first, br.Close())
}

// abort ends a failed transaction: it rolls back when the connection still
// works, and closes the connection (so the pool drops it) otherwise.
func abort(conn *pgx.Conn) {
	if conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn.PgConn().TxStatus() != 'I' {
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			conn.Close(ctx)
		}
	}
}

// state is what the committer knows of the database, updated as it
// decides each request of the group.
type state struct {
	head     uint64
	time     time.Time
	versions map[string]uint64
	known    map[[16]byte]driver.Record // records of the group's event IDs, committed or decided
}

// readState begins the group's transaction, takes the commit lock when
// locked, or else the lock of its slot, and reads the head, the versions of
// the group's streams and the records of its event IDs, in one round trip.
func (s *Store) readState(ctx context.Context, conn *pgx.Conn, group []*request, locked bool, slot int64) (*state, error) {
	var streams []string
	var ids [][16]byte
	seen := map[string]bool{}
	for _, r := range group {
		for _, a := range r.batch.Appends {
			if !seen[a.Stream] {
				seen[a.Stream] = true
				streams = append(streams, a.Stream)
			}
			for _, e := range a.Events {
				if !e.GeneratedID {
					ids = append(ids, e.ID)
				}
			}
		}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if locked {
		b.Queue(s.sql.lock, s.key)
	} else {
		b.Queue(s.sql.lock, slot)
	}
	b.Queue(s.sql.lastRow)
	b.Queue(s.sql.streamVersions, streams)
	if len(ids) > 0 {
		b.Queue(s.sql.lookupIDs, ids)
	}
	br := conn.SendBatch(ctx, b)
	st, err := scanState(br, len(ids) > 0)
	return st, errors.Join(err, br.Close())
}

func scanState(br pgx.BatchResults, lookup bool) (*state, error) {
	st := &state{versions: map[string]uint64{}, known: map[[16]byte]driver.Record{}}
	for range 2 { // BEGIN, lock
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	var head int64
	switch err := br.QueryRow().Scan(&head, &st.time); {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, err
	}
	st.head = uint64(head)
	var stream string
	var v int64
	if _, err := pgx.ForEachRow(must(br.Query()), []any{&stream, &v}, func() error {
		st.versions[stream] = uint64(v)
		return nil
	}); err != nil {
		return nil, err
	}
	if !lookup {
		return st, nil
	}
	var r driver.Record
	var version, position int64
	_, err := pgx.ForEachRow(must(br.Query()), []any{&r.ID, &r.Stream, &version, &position}, func() error {
		r.Version, r.Position = uint64(version), uint64(position)
		st.known[r.ID] = r
		return nil
	})
	return st, err
}

// must passes on rows whose error pgx.ForEachRow reports.
func must(rows pgx.Rows, _ error) pgx.Rows { return rows }

// decide answers each request of the group in order, as if each were
// committed alone after the ones before it, and collects the rows to write.
func (st *state) decide(group []*request) ([]outcome, *rowSet) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	st.time = later(now, st.time) // commit times never go back, even across nodes' clocks
	outs := make([]outcome, len(group))
	rows := &rowSet{}
	for i, r := range group {
		outs[i] = st.decideOne(r.batch, rows)
	}
	return outs, rows
}

func (st *state) decideOne(b *driver.Batch, rows *rowSet) outcome {
	c, dup, err := driver.MatchDuplicate(b, func(id [16]byte) (driver.Record, bool, error) {
		r, ok := st.known[id]
		return r, ok, nil
	})
	if err != nil || dup {
		return outcome{c: c, err: err}
	}
	for i, a := range b.Appends {
		if v := st.versions[a.Stream]; !a.Expected.Check(v) {
			return outcome{err: &driver.ConflictError{Index: i, Actual: v}}
		}
	}
	c.Streams = make([]driver.StreamCommitted, len(b.Appends))
	for i, a := range b.Appends {
		v := st.versions[a.Stream]
		category := driver.Category(a.Stream)
		for j := range a.Events {
			e := &a.Events[j]
			st.head++
			v++
			rows.add(st.head, a.Stream, v, category, e)
			if !e.GeneratedID {
				st.known[e.ID] = driver.Record{Stream: a.Stream, Version: v, Position: st.head}
			}
		}
		st.versions[a.Stream] = v
		c.Streams[i] = driver.StreamCommitted{Version: v, Position: st.head}
	}
	return outcome{c: c}
}

// rowSet holds the rows of one INSERT, column by column.
type rowSet struct {
	n                                                      int
	positions, versions                                    []int64
	streams, categories, types                             []string
	ids                                                    [][16]byte
	contentTypes, data, metadata, correlations, causations [][]byte
}

func (rs *rowSet) add(position uint64, stream string, version uint64, category string, e *driver.Event) {
	rs.n++
	rs.positions = append(rs.positions, int64(position))
	rs.versions = append(rs.versions, int64(version))
	rs.streams = append(rs.streams, stream)
	rs.categories = append(rs.categories, category)
	rs.types = append(rs.types, e.Type)
	rs.ids = append(rs.ids, e.ID)
	rs.contentTypes = append(rs.contentTypes, []byte(e.ContentType))
	rs.data = append(rs.data, e.Data)
	rs.metadata = append(rs.metadata, e.Metadata)
	rs.correlations = append(rs.correlations, []byte(e.CorrelationID))
	rs.causations = append(rs.causations, []byte(e.CausationID))
}
