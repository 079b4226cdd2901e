package replica

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/fjord-data/fjord/eventstore"
)

// ErrBehind: the replica has not reached the snapshot's position, so it
// cannot be compared with it yet (WaitFor it first).
var ErrBehind = errors.New("replica: behind the snapshot it is compared with")

// Report is the outcome of a reconciliation. Rows and checksums cover the
// live entities that did not change after the snapshot's position.
type Report struct {
	Position                       eventstore.Position // the snapshot's
	OwnerRows, ReplicaRows         int
	OwnerChecksum, ReplicaChecksum uint64
	Drift                          bool
	Missing, Extra, Different      []string // keys, sorted; at most MaxKeys each
	SkippedNewer                   int      // entities changed after the snapshot, not compared
}

// MaxKeys bounds the keys a Report lists in each category.
const MaxKeys = 100

// Reconcile compares the replica with a snapshot of the owner: the number
// of live rows and an order-independent checksum of (key, version, data),
// and lists the keys that are missing, extra or different. Entities the
// replica changed after the snapshot's position are left out. The replica
// must have reached the snapshot's position, else the error is ErrBehind.
func (r *Replica) Reconcile(ctx context.Context, snap Snapshot) (Report, error) {
	if _, err := r.Init(ctx); err != nil {
		return Report{}, err
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return Report{}, err
	}
	defer tx.Rollback()
	var at eventstore.Position
	// No checkpoint is position 0: a replica fed by messages keeps none,
	// and is compared with a snapshot at position 0.
	err = tx.QueryRowContext(ctx, r.q("SELECT position FROM "+checkpointTable+" WHERE name = ?"), r.name).Scan(&at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Report{}, fmt.Errorf("replica %s: reading its checkpoint: %w", r.name, err)
	}
	if at < snap.Position {
		return Report{}, fmt.Errorf("%w: replica %s is at %d, the snapshot at %d", ErrBehind, r.name, at, snap.Position)
	}
	type entry struct {
		hash  uint64
		newer bool
	}
	mine := map[string]entry{}
	rows, err := tx.QueryContext(ctx, "SELECT key, version, deleted, data, position FROM "+r.name)
	if err != nil {
		return Report{}, err
	}
	for rows.Next() {
		var row Row
		var deleted int
		var pos eventstore.Position
		if err := rows.Scan(&row.Key, &row.Version, &deleted, &row.Data, &pos); err != nil {
			rows.Close()
			return Report{}, err
		}
		switch {
		case pos > snap.Position:
			mine[row.Key] = entry{newer: true}
		case deleted == 0:
			mine[row.Key] = entry{hash: rowHash(row)}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Report{}, err
	}
	rep := Report{Position: snap.Position}
	seen := map[string]bool{}
	for row, err := range snap.Rows {
		if err != nil {
			return Report{}, err
		}
		m, ok := mine[row.Key]
		seen[row.Key] = true
		if m.newer {
			rep.SkippedNewer++
			continue
		}
		if row.Deleted {
			continue
		}
		h := rowHash(row)
		rep.OwnerRows++
		rep.OwnerChecksum += h
		switch {
		case !ok:
			rep.Missing = appendKey(rep.Missing, row.Key)
		case m.hash != h:
			rep.Different = appendKey(rep.Different, row.Key)
		}
	}
	for key, m := range mine {
		if m.newer {
			if !seen[key] {
				rep.SkippedNewer++
			}
			continue
		}
		rep.ReplicaRows++
		rep.ReplicaChecksum += m.hash
		if !seen[key] {
			rep.Extra = appendKey(rep.Extra, key)
		}
	}
	// A snapshot tombstone the replica still has live is extra, too.
	for row, _ := range snap.Rows {
		if m, ok := mine[row.Key]; row.Deleted && ok && !m.newer {
			rep.Extra = appendKey(rep.Extra, row.Key)
		}
	}
	for _, keys := range [][]string{rep.Missing, rep.Extra, rep.Different} {
		slices.Sort(keys)
	}
	rep.Drift = rep.OwnerRows != rep.ReplicaRows || rep.OwnerChecksum != rep.ReplicaChecksum ||
		len(rep.Missing)+len(rep.Extra)+len(rep.Different) > 0
	return rep, nil
}

func appendKey(keys []string, k string) []string {
	if len(keys) < MaxKeys {
		keys = append(keys, k)
	}
	return keys
}

func rowHash(row Row) uint64 {
	h := fnv.New64a()
	h.Write([]byte(row.Key))
	h.Write([]byte{0})
	h.Write(binary.BigEndian.AppendUint64(nil, row.Version))
	h.Write(row.Data)
	return h.Sum64()
}
