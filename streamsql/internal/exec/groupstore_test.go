package exec

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGroupStoreCompacts: replacing and deleting groups over and over
// keeps every group's latest bytes through the compactions that bound the
// dead bytes shared allocations may hold.
func TestGroupStoreCompacts(t *testing.T) {
	s := newGroupStore()
	want := map[string]string{}
	compactions := 0
	for round := range 1000 {
		for i := range 100 {
			id := fmt.Sprintf("g%d", i)
			if (i+round)%7 == 0 {
				s.stage(id, nil, true)
				delete(want, id)
				continue
			}
			val := bytes.Repeat([]byte{byte(round), byte(i)}, 40+i%9)
			s.stage(id, val, false)
			want[id] = string(val)
		}
		dead := s.dead
		s.Publish()
		if s.dead < dead {
			compactions++
		}
		if s.dead > max(s.live, minCompact) {
			t.Fatalf("round %d: %d dead bytes, %d live", round, s.dead, s.live)
		}
		live := 0
		for _, v := range want {
			live += len(v)
		}
		if s.live != live {
			t.Fatalf("round %d: live = %d, want %d", round, s.live, live)
		}
	}
	if d := cmp.Diff(want, s.groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	if compactions == 0 {
		t.Error("no compaction")
	}
	if len(s.staged) != 0 || len(s.buf) != 0 {
		t.Errorf("%d staged, %d bytes buffered after Publish", len(s.staged), len(s.buf))
	}
}
