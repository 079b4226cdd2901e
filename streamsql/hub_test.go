package streamsql

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// drain takes what s has buffered: the first value of each change's row
// (a converting hub's) and whether s ended, with its error.
func drain(s *subscriber) (got []any, ended bool, err error) {
	for {
		select {
		case b, ok := <-s.ch:
			if !ok {
				return got, true, s.err()
			}
			for _, c := range b.out {
				got = append(got, c.Row[0])
			}
		default:
			return got, false, nil
		}
	}
}

func changes(vals ...int64) []exec.Change {
	out := make([]exec.Change, len(vals))
	for i, v := range vals {
		out[i] = exec.Change{Op: exec.Insert, Row: []types.Value{{K: types.Int, I: v}}}
	}
	return out
}

// TestHubSlowSubscriber: a full buffer ends that subscriber with
// ErrSlowSubscriber, wherever it sits among the others, and every other
// subscriber still gets the batch that overflowed it, converted once.
func TestHubSlowSubscriber(t *testing.T) {
	cols := []types.Column{{Name: "v", Type: &types.Type{Kind: types.Int}}}
	conversions := 0
	h := newHub(1, func(cs []exec.Change) []Change {
		conversions++
		return convertChanges(cs, columnsOf(cols), cols)
	})
	subs := make([]*subscriber, 4)
	for i := range subs {
		subs[i] = h.subscribe(nil)
	}
	h.publish(changes(1))
	// Subscribers 0 and 2 do not read; 1 and 3 do.
	for _, i := range []int{1, 3} {
		if got, _, _ := drain(subs[i]); !cmp.Equal(got, []any{int64(1)}) {
			t.Errorf("subscriber %d, first batch: %v", i, got)
		}
	}
	h.publish(changes(2, 3))
	if got, want := conversions, 2; got != want {
		t.Errorf("conversions: %d, want %d (one a batch)", got, want)
	}
	if got := h.count(); got != 2 {
		t.Errorf("subscribers left: %d, want 2", got)
	}
	for i, want := range []struct {
		got   []any
		ended bool
		err   error
	}{
		{[]any{int64(1)}, true, ErrSlowSubscriber},
		{[]any{int64(2), int64(3)}, false, nil},
		{[]any{int64(1)}, true, ErrSlowSubscriber},
		{[]any{int64(2), int64(3)}, false, nil},
	} {
		got, ended, err := drain(subs[i])
		if !cmp.Equal(got, want.got) || ended != want.ended || !errors.Is(err, want.err) {
			t.Errorf("subscriber %d: %v ended=%v err=%v; want %v ended=%v err=%v", i, got, ended, err, want.got, want.ended, want.err)
		}
	}
	// Leaving, twice, and closing end each subscriber once.
	h.unsubscribe(subs[1], nil)
	h.unsubscribe(subs[1], nil)
	h.unsubscribe(subs[0], errors.New("not subscribed any more"))
	h.close(nil)
	h.publish(changes(4))
	for i, s := range subs {
		if got, ended, err := drain(s); len(got) != 0 || !ended || (i%2 == 1 && err != nil) {
			t.Errorf("subscriber %d after close: %v ended=%v err=%v", i, got, ended, err)
		}
	}
}

// TestConvertChanges: a batch converted at once equals its changes
// converted one by one, and a row's slice cannot grow into the next's.
func TestConvertChanges(t *testing.T) {
	ts := []types.Column{{Name: "k", Type: &types.Type{Kind: types.String}}, {Name: "n", Type: &types.Type{Kind: types.Int}}}
	cols := columnsOf(ts)
	row := func(k string, n int64) []types.Value {
		return []types.Value{{K: types.String, S: k}, {K: types.Int, I: n}}
	}
	cs := []exec.Change{
		{Op: exec.Insert, Row: row("a", 1), Offset: 7},
		{Op: exec.Update, Row: row("a", 2), Old: row("a", 1), Offset: 8, Windowed: true, WindowStart: 60000, WindowEnd: 120000},
		{Op: exec.Delete, Row: row("b", 3), Offset: 9},
	}
	got := convertChanges(cs, cols, ts)
	var want []Change
	for i := range cs {
		want = append(want, convertChange(&cs[i], cols, ts))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("convertChanges (-one by one +at once):\n%s", d)
	}
	_ = append(got[0].Row, "appended")
	_ = append(got[1].Row, "appended")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("appending to a row changed the batch (-want +got):\n%s", d)
	}
}
