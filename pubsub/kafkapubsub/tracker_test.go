package kafkapubsub

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runTracker plays a script against a fresh tracker. Each line is
// "op partition [offsets…] [=> want]":
//
//	deliver P O…   => the offsets handed out
//	ack P O…       (marks done)
//	nack P O…      (marks pending)
//	seek           => P@O… (partitions to seek, lowest pending offset)
//	commit         => P@O[/meta]… (what toCommit returns), then records it committed
//	seed P C META  (starts P at committed offset C with metadata META, "-" for none)
//	drop P
func runTracker(t *testing.T, script string) {
	t.Helper()
	tr := newTracker()
	for n, line := range strings.Split(strings.TrimSpace(script), "\n") {
		line = strings.TrimSpace(line)
		cmd, want, hasWant := strings.Cut(line, "=>")
		want = strings.TrimSpace(want)
		f := strings.Fields(cmd)
		var got string
		switch f[0] {
		case "deliver":
			p, offs := partOffsets(t, f[1:])
			var out []string
			for _, o := range offs {
				if tr.deliver(p, o) {
					out = append(out, strconv.FormatInt(o, 10))
				}
			}
			got = strings.Join(out, " ")
		case "ack", "nack":
			p, offs := partOffsets(t, f[1:])
			for _, o := range offs {
				if f[0] == "ack" {
					tr.ack(p, o)
				} else {
					tr.nack(p, o)
				}
			}
		case "seek":
			var out []string
			for p, o := range tr.seeks() {
				out = append(out, fmt.Sprintf("%d@%d", p, o))
			}
			slices.Sort(out)
			got = strings.Join(out, " ")
		case "commit":
			var out []string
			for p, c := range tr.toCommit(nil) {
				s := fmt.Sprintf("%d@%d", p, c.offset)
				if c.meta != "" {
					s += "/" + c.meta
				}
				out = append(out, s)
				tr.committed(p, c)
			}
			slices.Sort(out)
			got = strings.Join(out, " ")
		case "seed":
			p, offs := partOffsets(t, f[1:3])
			meta := f[3]
			if meta == "-" {
				meta = ""
			}
			spans, err := decodeAckMeta(offs[0], meta)
			if err != nil {
				t.Fatalf("line %d: %v", n+1, err)
			}
			tr.seed(p, offs[0], spans, meta)
		case "drop":
			p, _ := partOffsets(t, f[1:2])
			tr.drop(p)
		default:
			t.Fatalf("line %d: unknown op %q", n+1, f[0])
		}
		if hasWant {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("line %d %q (-want +got):\n%s", n+1, line, diff)
			}
		}
	}
}

func partOffsets(t *testing.T, f []string) (int32, []int64) {
	t.Helper()
	p, err := strconv.ParseInt(f[0], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, s := range f[1:] {
		o, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, o)
	}
	return int32(p), offs
}

func TestTracker(t *testing.T) {
	tests := []struct{ name, script string }{
		{"in order acks commit past each", `
			deliver 0 0 1 2 => 0 1 2
			commit => 0@0
			ack 0 0 1
			commit => 0@2
			ack 0 2
			commit => 0@3
			commit =>`},
		{"out of order acks never commit past an open offset", `
			deliver 0 0 1 2 3 4 => 0 1 2 3 4
			ack 0 1 3 4
			commit => 0@0/fjord1;1:1,1:2
			ack 0 0
			commit => 0@2/fjord1;1:2
			ack 0 2
			commit => 0@5`},
		{"gaps in offsets (compaction, transaction markers) count as done", `
			deliver 0 10 13 17 => 10 13 17
			ack 0 13
			commit => 0@10/fjord1;1:6
			ack 0 10
			commit => 0@17
			ack 0 17
			commit => 0@18`},
		{"a repeated offset in flight or done is skipped", `
			deliver 0 0 1 2 => 0 1 2
			ack 0 1
			deliver 0 0 1 2 3 => 3`},
		{"nack seeks back to the lowest pending offset and redelivers only it", `
			deliver 0 5 6 7 8 => 5 6 7 8
			ack 0 5
			nack 0 7
			seek => 0@7
			seek =>
			deliver 0 7 8 9 => 7 9
			commit => 0@6`},
		{"nacks on two partitions", `
			deliver 0 0 1 => 0 1
			deliver 1 0 1 => 0 1
			nack 0 1
			nack 1 0 1
			seek => 0@1 1@0
			deliver 1 0 1 => 0 1
			deliver 0 1 => 1`},
		{"a nack of a done offset does nothing", `
			deliver 0 0 1 => 0 1
			ack 0 0
			nack 0 0
			seek =>`},
		{"ack after nack counts", `
			deliver 0 0 1 => 0 1
			nack 0 0
			ack 0 0 1
			seek =>
			commit => 0@2`},
		{"revoke drops a partition: its offsets start afresh", `
			deliver 0 0 1 2 => 0 1 2
			deliver 1 0 => 0
			ack 0 1
			drop 0
			ack 0 0
			commit => 1@0
			deliver 0 0 1 2 => 0 1 2`},
		{"seeded spans from an earlier session are skipped", `
			seed 0 3 fjord1;1:2,2:1
			deliver 0 3 4 5 6 7 8 9 => 3 6 7 9
			commit =>
			ack 0 3
			commit => 0@6/fjord1;2:1`},
		{"seeded spans beyond what was fetched stay in the metadata", `
			seed 0 3 fjord1;5:2
			deliver 0 3 => 3
			ack 0 3
			commit => 0@4/fjord1;4:2
			deliver 0 4 => 4
			ack 0 4
			commit => 0@5/fjord1;3:2`},
		{"seed keeps a partition that stayed assigned", `
			deliver 0 0 1 => 0 1
			seed 0 7 -
			commit => 0@0
			deliver 0 0 1 => `},
		{"foreign metadata seeds nothing", `
			seed 0 3 member-42
			deliver 0 3 4 => 3 4`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runTracker(t, tc.script) })
	}
}

func TestTrackerCompacts(t *testing.T) {
	tr := newTracker()
	for o := range int64(10_000) {
		tr.deliver(0, o)
		if o%2 == 1 {
			tr.ack(0, o)
			tr.ack(0, o-1)
		}
	}
	if n := len(tr.parts[0].order); n > 64 {
		t.Errorf("order holds %d offsets after every one was acknowledged, want at most 64", n)
	}
	if got := tr.toCommit(nil)[0]; got != (commit{offset: 10_000}) {
		t.Errorf("toCommit = %+v, want offset 10000 without metadata", got)
	}
}
