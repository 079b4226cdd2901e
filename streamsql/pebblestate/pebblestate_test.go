package pebblestate_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

// TestReopen: definitions, positions, pending ranges and entries survive a
// reopen; a commit replaces entries and clears the pending range; a drop
// removes one query only.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := pebblestate.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defs := []streamsql.Definition{{SQL: "CREATE STREAM a (x INTEGER) WITH (SOURCE='a-')", Seq: 1}, {SQL: "CREATE TABLE t AS SELECT …", QueryID: "CTAS_T_2", Seq: 2}}
	for _, d := range defs {
		if err := st.AddDefinition(d); err != nil {
			t.Fatal(err)
		}
	}
	put := func(entries map[string]string) func(func(string, []byte)) {
		return func(p func(string, []byte)) {
			for k, v := range entries {
				if v == "" {
					p(k, nil)
				} else {
					p(k, []byte(v))
				}
			}
		}
	}
	must(t, st.Commit("q1", 10, put(map[string]string{"ga": "1", "gb": "2"})))
	must(t, st.Commit("q1", 20, put(map[string]string{"ga": "", "gc": "3"})))
	must(t, st.SetPending("q1", 21, 30))
	must(t, st.Commit("q2", 5, put(map[string]string{"gz": "9"})))
	must(t, st.DropQuery("q2"))
	must(t, st.Close())

	st, err = pebblestate.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(defs, got); d != "" {
		t.Errorf("definitions (-want +got):\n%s", d)
	}
	entries := map[string]string{}
	pos, pending, err := st.Load("q1", func(k string, v []byte) error { entries[k] = string(v); return nil })
	if err != nil || pos != 20 || pending != [2]uint64{21, 30} {
		t.Errorf("q1: pos %d pending %v err %v; want 20, [21 30]", pos, pending, err)
	}
	if d := cmp.Diff(map[string]string{"gb": "2", "gc": "3"}, entries); d != "" {
		t.Errorf("q1 entries (-want +got):\n%s", d)
	}
	n := 0
	pos, _, err = st.Load("q2", func(string, []byte) error { n++; return nil })
	if err != nil || pos != 0 || n != 0 {
		t.Errorf("dropped q2: pos %d, %d entries, err %v", pos, n, err)
	}
	must(t, st.DeleteDefinition(1))
	if got, _ := st.Definitions(); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("after deleting definition 1: %v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
