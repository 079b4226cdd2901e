// Package pgclassic is the classic PostgreSQL event store design, kept as a
// baseline for benchmarks of eventstore/pgstore: one transaction per
// append, a bigserial position, and the expected version checked against
// max(version) of the stream, with the (stream, version) unique index
// catching races. It is NOT a correct event store: sequence values commit
// out of order and rolled-back transactions leave holes, so a reader of
// $all can skip events. Use it only to compare.
//
//	b, err := pgclassic.Open(ctx, pool, "bench_baseline")
//	s := eventstore.New(b, nil)
package pgclassic

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Store is the baseline backend. It is safe for concurrent use; Close does
// not close the pool.
type Store struct {
	pool   *pgxpool.Pool
	ev     string // quoted events table
	closed atomic.Bool
}

var _ driver.Backend = (*Store)(nil)

const columns = "position, stream, version, id, type, content_type, data, metadata, correlation_id, causation_id, time"

// Open creates the table in schema if needed (the same columns and indexes
// as pgstore, but a bigserial position).
func Open(ctx context.Context, pool *pgxpool.Pool, schema string) (*Store, error) {
	q := pgx.Identifier{schema}.Sanitize()
	ev := q + ".events"
	_, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q+`;
CREATE TABLE IF NOT EXISTS `+ev+` (
	position bigserial PRIMARY KEY, stream text NOT NULL, version bigint NOT NULL, category text NOT NULL,
	id uuid NOT NULL, type text NOT NULL, content_type bytea NOT NULL, data bytea, metadata bytea,
	correlation_id bytea NOT NULL, causation_id bytea NOT NULL, time timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON `+ev+` (stream, version);
CREATE UNIQUE INDEX IF NOT EXISTS events_id ON `+ev+` (id);
CREATE INDEX IF NOT EXISTS events_category_position ON `+ev+` (category, position);
CREATE INDEX IF NOT EXISTS events_type_position ON `+ev+` (type, position)`)
	if err != nil {
		return nil, fmt.Errorf("pgclassic: creating the table: %w", err)
	}
	return &Store{pool: pool, ev: ev}, nil
}

// Commit implements driver.Backend: one transaction, a max(version) check
// per stream, one INSERT of all the batch's rows. When a racing writer
// takes a version first (a unique violation), it tries again: the retry
// either finds the expected version broken or appends after the winner.
func (s *Store) Commit(ctx context.Context, b *driver.Batch) (driver.Committed, error) {
	if s.closed.Load() {
		return driver.Committed{}, driver.ErrClosed
	}
	for {
		c, err := s.commitOnce(ctx, b)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "events_stream_version" {
			continue
		}
		return c, err
	}
}

func (s *Store) commitOnce(ctx context.Context, b *driver.Batch) (c driver.Committed, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var dup bool
		c, dup, err = driver.MatchDuplicate(b, func(id [16]byte) (driver.Record, bool, error) {
			var r driver.Record
			var v, p int64
			err := tx.QueryRow(ctx, "SELECT stream, version, position FROM "+s.ev+" WHERE id = $1", id).Scan(&r.Stream, &v, &p)
			if errors.Is(err, pgx.ErrNoRows) {
				return r, false, nil
			}
			r.Version, r.Position = uint64(v), uint64(p)
			return r, err == nil, err
		})
		if err != nil || dup {
			return err
		}
		var streams, categories, types []string
		var versions []int64
		var ids [][16]byte
		var cts, data, meta, corr, caus [][]byte
		last := make([]int, len(b.Appends)) // index of each append's last row
		for i, a := range b.Appends {
			var v int64
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+s.ev+" WHERE stream = $1", a.Stream).Scan(&v); err != nil {
				return err
			}
			if !a.Expected.Check(uint64(v)) {
				return &driver.ConflictError{Index: i, Actual: uint64(v)}
			}
			for _, e := range a.Events {
				v++
				streams, categories, types = append(streams, a.Stream), append(categories, driver.Category(a.Stream)), append(types, e.Type)
				versions, ids = append(versions, v), append(ids, e.ID)
				cts, data, meta = append(cts, []byte(e.ContentType)), append(data, e.Data), append(meta, e.Metadata)
				corr, caus = append(corr, []byte(e.CorrelationID)), append(caus, []byte(e.CausationID))
			}
			last[i] = len(streams) - 1
		}
		rows, err := tx.Query(ctx, `INSERT INTO `+s.ev+` (stream, version, category, id, type, content_type, data, metadata, correlation_id, causation_id)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::uuid[], $5::text[], $6::bytea[], $7::bytea[], $8::bytea[], $9::bytea[], $10::bytea[])
RETURNING position, version`, streams, versions, categories, ids, types, cts, data, meta, corr, caus)
		if err != nil {
			return err
		}
		var written []driver.StreamCommitted
		var p, v int64
		if _, err := pgx.ForEachRow(rows, []any{&p, &v}, func() error {
			written = append(written, driver.StreamCommitted{Version: uint64(v), Position: uint64(p)})
			return nil
		}); err != nil {
			return err
		}
		c.Streams = make([]driver.StreamCommitted, len(b.Appends))
		for i, l := range last {
			c.Streams[i] = written[l]
		}
		return nil
	})
	return c, err
}

// ReadAll implements driver.Backend: position > last up to max(position).
func (s *Store) ReadAll(ctx context.Context, q driver.AllQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		until := q.Until
		if until == 0 {
			h, err := s.Head(ctx)
			if err != nil {
				yield(driver.Record{}, err)
				return
			}
			until = h
		}
		sql, from := "SELECT "+columns+" FROM "+s.ev+" WHERE position >= $1 AND position <= $2 ORDER BY position LIMIT $3", int64(q.From)
		if q.Backwards {
			sql, from = "SELECT "+columns+" FROM "+s.ev+" WHERE position <= $1 AND position <= $2 ORDER BY position DESC LIMIT $3", int64(q.From)
			if q.From == 0 {
				from = math.MaxInt64
			}
		}
		limit := int64(math.MaxInt64)
		if q.Limit > 0 && q.Filter.IsZero() {
			limit = int64(q.Limit)
		}
		n := 0
		for r, err := range s.query(ctx, sql, from, int64(until), limit) {
			if err != nil || q.Filter.Match(r.Stream, r.Type) {
				if q.Limit > 0 && n == q.Limit {
					return
				}
				n++
				if !yield(r, err) || err != nil {
					return
				}
			}
		}
	}
}

// ReadStream implements driver.Backend.
func (s *Store) ReadStream(ctx context.Context, q driver.StreamQuery) iter.Seq2[driver.Record, error] {
	sql, from := "SELECT "+columns+" FROM "+s.ev+" WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3", int64(q.From)
	if q.Backwards {
		sql = "SELECT " + columns + " FROM " + s.ev + " WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3"
		if q.From == 0 {
			from = math.MaxInt64
		}
	}
	limit := int64(q.Limit)
	if limit == 0 {
		limit = math.MaxInt64
	}
	return s.query(ctx, sql, q.Stream, from, limit)
}

func (s *Store) query(ctx context.Context, sql string, args ...any) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		if s.closed.Load() {
			yield(driver.Record{}, driver.ErrClosed)
			return
		}
		rows, err := s.pool.Query(ctx, sql, args...)
		var recs []driver.Record
		if err == nil {
			recs, err = pgx.CollectRows(rows, scanRecord)
		}
		if err != nil {
			yield(driver.Record{}, err)
			return
		}
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func scanRecord(row pgx.CollectableRow) (driver.Record, error) {
	var r driver.Record
	var position, version int64
	var ct, corr, caus []byte
	var t time.Time
	err := row.Scan(&position, &r.Stream, &version, &r.ID, &r.Type, &ct, &r.Data, &r.Metadata, &corr, &caus, &t)
	r.Position, r.Version, r.Time = uint64(position), uint64(version), t.UTC()
	r.ContentType, r.CorrelationID, r.CausationID = string(ct), string(corr), string(caus)
	return r, err
}

// StreamInfo implements driver.Backend.
func (s *Store) StreamInfo(ctx context.Context, stream string) (driver.StreamInfo, error) {
	if s.closed.Load() {
		return driver.StreamInfo{}, driver.ErrClosed
	}
	var i driver.StreamInfo
	var v, p int64
	err := s.pool.QueryRow(ctx, `SELECT max(version), max(position), min(time), max(time) FROM `+s.ev+` WHERE stream = $1 HAVING count(*) > 0`, stream).
		Scan(&v, &p, &i.Created, &i.Updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return i, driver.ErrStreamNotFound
	}
	i.Version, i.Position = uint64(v), uint64(p)
	return i, err
}

// Head implements driver.Backend: max(position), which may be beyond
// positions not yet committed.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, driver.ErrClosed
	}
	var h int64
	err := s.pool.QueryRow(ctx, "SELECT coalesce(max(position), 0) FROM "+s.ev).Scan(&h)
	return uint64(h), err
}

// Close implements driver.Backend; it does not close the pool.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
