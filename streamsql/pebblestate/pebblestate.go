package pebblestate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fjord-data/fjord/streamsql"
)

// Store keeps a streamsql engine's durable state in Pebble:
//
//	d<seq>            a definition: {"sql": …, "id": …} (CREATE, in order)
//	q<id>\x00p        a persistent query's committed input position
//	q<id>\x00w        a stream query's pending output batch (from, to)
//	q<id>\x00s<key>   a persistent query's state entries (exec.Pipeline.Save)
//
// A persistent query's state entries and its position are written in one
// batch, so a restart resumes from a position with exactly the state that
// position produced.
//
// Store implements streamsql.StateStore; it is safe for concurrent use.
type Store struct {
	db *pebble.DB
}

var _ streamsql.StateStore = (*Store)(nil)

type pebbleLog struct{ l *slog.Logger }

func (p pebbleLog) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLog) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLog) Fatalf(format string, args ...any) {
	panic("pebblestate: pebble: " + fmt.Sprintf(format, args...))
}

// Open opens (creating it if needed) the state in directory dir; an empty
// dir keeps it in memory. log receives Pebble's messages (nil discards
// them).
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &pebble.Options{Logger: pebbleLog{log}}
	if dir == "" {
		opts.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("pebblestate: open %q: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type definition struct {
	SQL string `json:"sql"`
	ID  string `json:"id,omitempty"`
}

func defKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'d'}, seq) }

// Definitions implements streamsql.StateStore.
func (s *Store) Definitions() ([]streamsql.Definition, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'d'}, UpperBound: []byte{'e'}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []streamsql.Definition
	for it.First(); it.Valid(); it.Next() {
		var d definition
		if err := json.Unmarshal(it.Value(), &d); err != nil || len(it.Key()) != 9 {
			return nil, fmt.Errorf("pebblestate: corrupt definition %q", it.Key())
		}
		out = append(out, streamsql.Definition{SQL: d.SQL, QueryID: d.ID, Seq: binary.BigEndian.Uint64(it.Key()[1:])})
	}
	return out, it.Error()
}

// AddDefinition implements streamsql.StateStore.
func (s *Store) AddDefinition(d streamsql.Definition) error {
	b, _ := json.Marshal(definition{SQL: d.SQL, ID: d.QueryID})
	return s.db.Set(defKey(d.Seq), b, pebble.Sync)
}

// DeleteDefinition implements streamsql.StateStore.
func (s *Store) DeleteDefinition(seq uint64) error { return s.db.Delete(defKey(seq), pebble.Sync) }

func queryKey(id string, kind byte, rest string) []byte {
	k := make([]byte, 0, 3+len(id)+len(rest))
	k = append(k, 'q')
	k = append(k, id...)
	k = append(k, 0, kind)
	return append(k, rest...)
}

// Load implements streamsql.StateStore.
func (s *Store) Load(id string, entry func(key string, val []byte) error) (pos uint64, pending [2]uint64, err error) {
	if v, closer, err := s.db.Get(queryKey(id, 'p', "")); err == nil {
		pos = binary.BigEndian.Uint64(v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, pending, err
	}
	if v, closer, err := s.db.Get(queryKey(id, 'w', "")); err == nil {
		pending[0], pending[1] = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, pending, err
	}
	lo := queryKey(id, 's', "")
	hi := queryKey(id, 't', "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, pending, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := entry(string(it.Key()[len(lo):]), append([]byte(nil), it.Value()...)); err != nil {
			return 0, pending, err
		}
	}
	return pos, pending, it.Error()
}

// SetPending implements streamsql.StateStore: the range is synced.
func (s *Store) SetPending(id string, from, to uint64) error {
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, from), to)
	return s.db.Set(queryKey(id, 'w', ""), v, pebble.Sync)
}

// Commit implements streamsql.StateStore: the entries, the position and
// the cleared pending range are one Pebble batch.
func (s *Store) Commit(id string, pos uint64, save func(put func(key string, val []byte))) error {
	b := s.db.NewBatch()
	defer b.Close()
	var err error
	save(func(key string, val []byte) {
		if err != nil {
			return
		}
		if val == nil {
			err = b.Delete(queryKey(id, 's', key), nil)
		} else {
			err = b.Set(queryKey(id, 's', key), val, nil)
		}
	})
	if err != nil {
		return err
	}
	if err := b.Set(queryKey(id, 'p', ""), binary.BigEndian.AppendUint64(nil, pos), nil); err != nil {
		return err
	}
	if err := b.Delete(queryKey(id, 'w', ""), nil); err != nil {
		return err
	}
	// Without a sync the commit may be lost with the machine, never torn:
	// the query then resumes from an earlier position with the state of
	// that position. Output appended to the store is covered by the
	// pending range, which is synced.
	return b.Commit(pebble.NoSync)
}

// DropQuery implements streamsql.StateStore.
func (s *Store) DropQuery(id string) error {
	lo := queryKey(id, 0, "")
	hi := queryKey(id, 0xff, "")
	return s.db.DeleteRange(lo, hi, pebble.Sync)
}
