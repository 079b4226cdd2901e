package exec

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// rowEncoding is the group state encoding as a row of values: what
// encodeGroup must write byte for byte, so that state saved before it
// wrote directly still loads.
func rowEncoding(g *group) []byte {
	emitted := Value{}
	if g.emitted != nil {
		emitted = types.NewArray(g.emitted)
	}
	row := []Value{types.NewInt(g.ws), types.NewInt(g.we), types.NewInt(g.n), types.NewInt(g.lastTime),
		types.NewInt(g.lastOff), types.NewBool(g.closed), types.NewArray(g.keyVals), emitted}
	for _, acc := range g.accs {
		row = append(row, acc.State())
	}
	return types.AppendRow(nil, row)
}

// TestEncodeGroup: for groups of plain, windowed and HAVING-filtered
// (never emitted) aggregations with several accumulators, encodeGroup
// writes the row encoding, reuses its scratch without the values sharing
// it, and a pipeline loaded from the saved state encodes the same groups.
func TestEncodeGroup(t *testing.T) {
	ddl := `CREATE STREAM s (k STRING, v BIGINT, d DOUBLE, at BIGINT) WITH (SOURCE='s-', TIMESTAMP='at')`
	queries := []string{
		`SELECT k, COUNT(*) AS n, SUM(v) AS total, AVG(d) AS a, MIN(v) AS lo, MAX(d) AS hi FROM s GROUP BY k EMIT CHANGES`,
		`SELECT k, v, COUNT(*) AS n, COLLECT_LIST(d) AS ds FROM s WINDOW TUMBLING (SIZE 10 MILLISECONDS) GROUP BY k, v EMIT CHANGES`,
		`SELECT k, COUNT(*) AS n FROM s GROUP BY k HAVING COUNT(*) > 3 EMIT CHANGES`,
	}
	for _, sql := range queries {
		t.Run(sql, func(t *testing.T) {
			p := testPipeline(t, ddl, sql)
			var events []Event
			for i := range 40 {
				events = append(events, Event{Stream: "s-1", Type: "T", Time: int64(i), Position: int64(i + 1), Version: int64(i + 1),
					Data: fmt.Appendf(nil, `{"k":"key-%d","v":%d,"d":%d.25,"at":%d}`, i%5, i%3, i, 1000+i)})
			}
			p.Process(events)
			saved := map[string][]byte{}
			p.Save(func(k string, v []byte) { saved[k] = v })
			var scratch []byte
			encoded := map[string][]byte{}
			for id, g := range p.agg.groups {
				var val []byte
				val, scratch = encodeGroup(g, scratch)
				if want := rowEncoding(g); !bytes.Equal(val, want) {
					t.Errorf("group %q:\n got %x\nwant %x", id, val, want)
				}
				if !bytes.Equal(saved["g"+id], val) {
					t.Errorf("group %q: Save wrote %x, want %x", id, saved["g"+id], val)
				}
				encoded[id] = val
			}
			if len(encoded) == 0 {
				t.Fatal("no groups")
			}
			// The values do not share the scratch buffer.
			for id, g := range p.agg.groups {
				if want := rowEncoding(g); !bytes.Equal(encoded[id], want) {
					t.Errorf("group %q changed after later encodings: %x, want %x", id, encoded[id], want)
				}
			}
			q := testPipeline(t, ddl, sql)
			for k, v := range saved {
				if v == nil { // a group dropped (an evicted window)
					continue
				}
				if err := q.Load(k, v); err != nil {
					t.Fatalf("Load(%q): %v", k, err)
				}
			}
			reloaded := map[string][]byte{}
			for id, g := range q.agg.groups {
				reloaded[id], _ = encodeGroup(g, nil)
			}
			if d := cmp.Diff(encoded, reloaded); d != "" {
				t.Errorf("groups after a reload (-saved +reloaded):\n%s", d)
			}
		})
	}
}

func testPipeline(t *testing.T, ddl, sql string) *Pipeline {
	t.Helper()
	s, err := parse.Parse(ddl)
	if err != nil {
		t.Fatal(err)
	}
	src, err := plan.Create(s.(*parse.CreateSource))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := parse.Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	q, err := plan.Select(sel.(*parse.Select), catalog{strings.ToUpper(src.Name): src})
	if err != nil {
		t.Fatal(err)
	}
	return New(q, &ErrorLog{})
}
