package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// A request is one Commit call waiting for the committer.
type request struct {
	batch *driver.Batch
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

// commitLoop is the committer: it takes the queued requests, as many as fit
// in MaxGroupEvents, and commits them in one transaction, until Close.
func (s *Store) commitLoop(ctx context.Context) {
	defer s.wg.Done()
	defer close(s.stopped)
	for {
		var first *request
		select {
		case first = <-s.queue:
		case <-s.stop:
			s.failQueued()
			return
		}
		var group []*request
		events := 0
		for r := first; r != nil; r = s.next() {
			if !r.state.CompareAndSwap(queued, taken) {
				continue // abandoned by its caller
			}
			group = append(group, r)
			if events += batchEvents(r.batch); events >= s.opts.MaxGroupEvents {
				break
			}
		}
		if len(group) > 0 {
			s.commitGroup(ctx, group)
		}
	}
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

// commitGroup commits a group of requests in one transaction and answers
// each.
func (s *Store) commitGroup(ctx context.Context, group []*request) {
	outs, err := s.commitTx(ctx, group)
	for i, r := range group {
		if err != nil {
			r.done <- outcome{err: err}
		} else {
			r.done <- outs[i]
		}
	}
}

// commitTx is one commit transaction. Under the commit lock it reads the
// head, the versions of the group's streams and the earlier records of the
// group's event IDs; decides each request in Go (duplicate, idempotency
// error, conflict, or written at the next positions); and writes all the
// new rows with one INSERT. A request that fails its checks does not fail
// the others. A returned error applies to the whole group.
func (s *Store) commitTx(ctx context.Context, group []*request) ([]outcome, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: commit: %w", describe(err))
	}
	defer pc.Release()
	conn := pc.Conn()
	st, err := s.readState(ctx, conn, group)
	if err != nil {
		abort(conn)
		return nil, fmt.Errorf("pgstore: commit: %w", describe(err))
	}
	outs, rows := st.decide(group)
	if rows.n == 0 {
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			abort(conn)
			return nil, fmt.Errorf("pgstore: commit: %w", describe(err))
		}
		return outs, nil
	}
	if s.beforeCommit != nil {
		if err := s.beforeCommit(ctx, conn); err != nil {
			abort(conn)
			return nil, fmt.Errorf("pgstore: commit: %w", err)
		}
	}
	b := &pgx.Batch{}
	b.Queue(s.sql.insert, rows.positions, rows.streams, rows.versions, rows.categories, rows.ids, rows.types,
		rows.contentTypes, rows.data, rows.metadata, rows.correlations, rows.causations, st.time)
	b.Queue("SELECT pg_notify($1, $2)", s.notify, strconv.FormatUint(st.head, 10))
	b.Queue("COMMIT")
	if err := execBatch(ctx, conn, b); err != nil {
		abort(conn)
		return nil, commitError(err, true)
	}
	s.advance(st.head)
	return outs, nil
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

// state is what the committer knows under the commit lock, updated as it
// decides each request of the group.
type state struct {
	head     uint64
	time     time.Time
	versions map[string]uint64
	known    map[[16]byte]driver.Record // records of the group's event IDs, committed or decided
}

// readState begins the transaction, takes the commit lock and reads the
// state, in one round trip.
func (s *Store) readState(ctx context.Context, conn *pgx.Conn, group []*request) (*state, error) {
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
	b.Queue(s.sql.lock, s.key)
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
	if now.Before(st.time) {
		now = st.time // commit times never go back, even across nodes' clocks
	}
	st.time = now
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
