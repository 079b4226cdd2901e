package pgstore

import (
	"context"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// readPage is how many records a read fetches per query. Reads fetch page
// by page and hold no connection while the caller consumes a page, so a
// slow consumer never holds a connection of the pool.
const readPage = 512

// ReadAll implements driver.Backend. Category and event-type filters are
// served by the (category, position) and (type, position) indexes.
func (s *Store) ReadAll(ctx context.Context, q driver.AllQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		if s.closed.Load() {
			yield(driver.Record{}, driver.ErrClosed)
			return
		}
		until := q.Until
		if until == 0 {
			h, err := s.Head(ctx)
			if err != nil {
				yield(driver.Record{}, err)
				return
			}
			until = h
		}
		from := max(q.From, 1)
		if q.Backwards && (q.From == 0 || q.From > until) {
			from = until
		}
		if until == 0 || (!q.Backwards && from > until) {
			return
		}
		base, args := s.allQuery(q, from, until)
		s.readPages(ctx, q.Limit, yield, func(after *driver.Record, n int) (string, []any) {
			a := append(args[:len(args):len(args)], n)
			switch {
			case after == nil:
			case q.Backwards:
				a[0] = int64(after.Position) - 1
			default:
				a[0] = int64(after.Position) + 1
			}
			return base + " LIMIT $" + strconv.Itoa(len(a)), a
		})
	}
}

// allQuery returns the SQL of a ReadAll page without its LIMIT, and its
// arguments: $1 is the position to continue from.
func (s *Store) allQuery(q driver.AllQuery, from, until uint64) (string, []any) {
	var b strings.Builder
	args := []any{int64(from)}
	if q.Backwards {
		b.WriteString(s.sql.readAllBwd)
	} else {
		b.WriteString(s.sql.readAllFwd)
		args = append(args, int64(until))
	}
	if f := q.Filter; f.Category != "" {
		args = append(args, f.Category)
		fmt.Fprintf(&b, " AND category = $%d", len(args))
	}
	if f := q.Filter; len(f.EventTypes) > 0 {
		args = append(args, f.EventTypes)
		fmt.Fprintf(&b, " AND type = ANY($%d::text[])", len(args))
	}
	if f := q.Filter; f.StreamPrefix != "" {
		args = append(args, f.StreamPrefix)
		fmt.Fprintf(&b, " AND starts_with(stream, $%d)", len(args))
	}
	if q.Backwards {
		b.WriteString(" ORDER BY position DESC")
	} else {
		b.WriteString(" ORDER BY position")
	}
	return b.String(), args
}

// ReadStream implements driver.Backend.
func (s *Store) ReadStream(ctx context.Context, q driver.StreamQuery) iter.Seq2[driver.Record, error] {
	return func(yield func(driver.Record, error) bool) {
		if s.closed.Load() {
			yield(driver.Record{}, driver.ErrClosed)
			return
		}
		from := int64(max(q.From, 1))
		sql := s.sql.readStreamFwd
		if q.Backwards {
			sql = s.sql.readStreamBwd
			if from = int64(min(q.From, math.MaxInt64)); q.From == 0 {
				from = math.MaxInt64
			}
		}
		s.readPages(ctx, q.Limit, yield, func(after *driver.Record, n int) (string, []any) {
			switch {
			case after == nil:
			case q.Backwards:
				from = int64(after.Version) - 1
			default:
				from = int64(after.Version) + 1
			}
			return sql, []any{q.Stream, from, n}
		})
	}
}

// readPages yields the records of successive pages until one comes back
// short or limit (0: none) records were yielded. page returns the SQL and
// arguments of the page after the record after (nil for the first page),
// with n rows at most.
func (s *Store) readPages(ctx context.Context, limit int, yield func(driver.Record, error) bool,
	page func(after *driver.Record, n int) (string, []any)) {
	var after *driver.Record
	for count := 0; limit == 0 || count < limit; {
		n := readPage
		if limit > 0 {
			n = min(n, limit-count)
		}
		sql, args := page(after, n)
		recs, err := s.query(ctx, sql, args)
		if err != nil {
			yield(driver.Record{}, err)
			return
		}
		for i := range recs {
			if !yield(recs[i], nil) {
				return
			}
		}
		count += len(recs)
		if len(recs) < n {
			return
		}
		after = &recs[len(recs)-1]
	}
}

func (s *Store) query(ctx context.Context, sql string, args []any) ([]driver.Record, error) {
	if s.closed.Load() {
		return nil, driver.ErrClosed
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	var recs []driver.Record
	if err == nil {
		recs, err = pgx.CollectRows(rows, scanRecord)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pgstore: reading: %w", describe(err))
	}
	return recs, nil
}

// scanRecord reads a row of the columns in columns.
func scanRecord(row pgx.CollectableRow) (driver.Record, error) {
	var r driver.Record
	var position, version int64
	var contentType, correlation, causation []byte
	var t time.Time
	err := row.Scan(&position, &r.Stream, &version, &r.ID, &r.Type, &contentType, &r.Data, &r.Metadata, &correlation, &causation, &t)
	r.Position, r.Version, r.Time = uint64(position), uint64(version), t.UTC()
	r.ContentType, r.CorrelationID, r.CausationID = string(contentType), string(correlation), string(causation)
	return r, err
}
