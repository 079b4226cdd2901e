package streamsql

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// stateDB keeps the engine's durable state in Pebble:
//
//	d<seq>            a definition: {"sql": …, "id": …} (CREATE, in order)
//	q<id>\x00p        a persistent query's committed input position
//	q<id>\x00w        a stream query's pending output batch (from, to)
//	q<id>\x00s<key>   a persistent query's state entries (exec.Pipeline.Save)
//
// A persistent query's state entries and its position are written in one
// batch, so a restart resumes from a position with exactly the state that
// position produced.
type stateDB struct {
	db *pebble.DB
}

type pebbleLog struct{ l *slog.Logger }

func (p pebbleLog) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLog) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLog) Fatalf(format string, args ...any) {
	panic("streamsql: pebble: " + fmt.Sprintf(format, args...))
}

func openState(dir string, log *slog.Logger) (*stateDB, error) {
	opts := &pebble.Options{Logger: pebbleLog{log}}
	if dir == "" {
		opts.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("streamsql: open state in %q: %w", dir, err)
	}
	return &stateDB{db: db}, nil
}

func (s *stateDB) close() error { return s.db.Close() }

type definition struct {
	SQL string `json:"sql"`
	ID  string `json:"id,omitempty"` // the persistent query it starts
	Seq uint64 `json:"-"`
}

func defKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'d'}, seq) }

// definitions returns the stored definitions in the order they were made.
func (s *stateDB) definitions() ([]definition, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'d'}, UpperBound: []byte{'e'}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []definition
	for it.First(); it.Valid(); it.Next() {
		var d definition
		if err := json.Unmarshal(it.Value(), &d); err != nil || len(it.Key()) != 9 {
			return nil, fmt.Errorf("streamsql: corrupt definition %q", it.Key())
		}
		d.Seq = binary.BigEndian.Uint64(it.Key()[1:])
		out = append(out, d)
	}
	return out, it.Error()
}

func (s *stateDB) addDefinition(d definition) error {
	b, _ := json.Marshal(d)
	return s.db.Set(defKey(d.Seq), b, pebble.Sync)
}

func (s *stateDB) deleteDefinition(seq uint64) error { return s.db.Delete(defKey(seq), pebble.Sync) }

func queryKey(id string, kind byte, rest string) []byte {
	k := make([]byte, 0, 3+len(id)+len(rest))
	k = append(k, 'q')
	k = append(k, id...)
	k = append(k, 0, kind)
	return append(k, rest...)
}

// load reads a query's position, pending range and state entries.
func (s *stateDB) load(id string, entry func(key string, val []byte) error) (pos uint64, pending [2]uint64, err error) {
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

// setPending records, durably, the input range of an output batch about
// to be appended to the store.
func (s *stateDB) setPending(id string, from, to uint64) error {
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, from), to)
	return s.db.Set(queryKey(id, 'w', ""), v, pebble.Sync)
}

// commit writes a query's changed state entries and its position in one
// batch, and clears its pending range.
func (s *stateDB) commit(id string, pos uint64, save func(put func(key string, val []byte))) error {
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

// dropQuery deletes everything a query stored.
func (s *stateDB) dropQuery(id string) error {
	lo := queryKey(id, 0, "")
	hi := queryKey(id, 0xff, "")
	return s.db.DeleteRange(lo, hi, pebble.Sync)
}
