package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seed appends a small shop history and returns the harness.
func seed(t *testing.T) *harness {
	h := newHarness(t)
	for _, a := range [][]string{
		{"order-1", "OrderPlaced", `{"n":1}`},
		{"order-2", "OrderPlaced", `{"n":2}`},
		{"customer-7", "CustomerRegistered", `{"n":3}`},
		{"order-1", "OrderPaid", `{"n":4}`},
		{"note-1", "Noted", "\x00\x01binary", "--content-type", "application/octet-stream"},
	} {
		h.mustRun("", append([]string{"append"}, a...)...)
	}
	return h
}

func TestRead(t *testing.T) {
	h := seed(t)
	tests := []struct {
		name string
		args []string
		want []uint64 // positions
	}{
		{"stream", []string{"read", "order-1"}, []uint64{1, 4}},
		{"stream from", []string{"read", "order-1", "--from", "2"}, []uint64{4}},
		{"stream backwards", []string{"read", "order-1", "--backwards"}, []uint64{4, 1}},
		{"stream limit", []string{"read", "order-1", "--limit", "1"}, []uint64{1}},
		{"no such stream", []string{"read", "order-9"}, nil},
		{"all", []string{"read", "$all"}, []uint64{1, 2, 3, 4, 5}},
		{"all from", []string{"read", "$all", "--from", "3", "--limit", "2"}, []uint64{3, 4}},
		{"all backwards", []string{"read", "$all", "--backwards", "--limit", "2"}, []uint64{5, 4}},
		{"category", []string{"read", "$all", "--category", "order"}, []uint64{1, 2, 4}},
		{"types", []string{"read", "$all", "--type", "OrderPaid", "--type", "CustomerRegistered"}, []uint64{3, 4}},
		{"prefix", []string{"read", "$all", "--prefix", "order-2"}, []uint64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for _, e := range decodeEvents(t, h.mustRun("", append(tt.args, "--json")...)) {
				got = append(got, e.Position)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
			table := h.mustRun("", tt.args...)
			if lines := strings.Count(table, "\n"); lines != len(tt.want)+1 {
				t.Errorf("table has %d lines, want a header and %d rows:\n%s", lines, len(tt.want), table)
			}
		})
	}
}

func TestReadMissingStream(t *testing.T) {
	out, errOut, err := seed(t).run("", "read", "order-9", "--json")
	if err != nil || out != "" || !strings.Contains(errOut, "stream order-9 has no events") {
		t.Errorf("got %v, stdout %q, stderr %q; want success, no output and a note", err, out, errOut)
	}
}

func TestReadFormats(t *testing.T) {
	h := seed(t)
	evs := decodeEvents(t, h.mustRun("", "read", "note-1", "--json"))
	want := []eventJSON{{Position: 5, Stream: "note-1", Version: 1, Type: "Noted", ContentType: "application/octet-stream",
		DataBase64: []byte("\x00\x01binary")}}
	if diff := cmp.Diff(want, evs, ignoreUnknowable); diff != "" {
		t.Errorf("binary event (-want +got):\n%s", diff)
	}
	table := strings.Split(h.mustRun("", "read", "$all"), "\n")
	dataCol := strings.Index(table[0], "DATA")
	for _, row := range table[1:4] {
		if got := strings.Index(row, "{"); got != dataCol {
			t.Errorf("row %q: data at column %d, want %d (aligned with the header)", row, got, dataCol)
		}
	}
	if !strings.Contains(table[5], "<8 bytes>") {
		t.Errorf("binary row %q does not show its size", table[5])
	}
}

func TestReadUsageErrors(t *testing.T) {
	h := seed(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"read"}, "missing STREAM|$all"},
		{[]string{"read", "a", "b"}, `unexpected argument "b"`},
		{[]string{"read", "order-1", "--category", "order"}, "--category applies to $all only"},
		{[]string{"read", "order-1", "--type", "X"}, "--type applies to $all only"},
		{[]string{"read", "order-1", "--limit", "-1"}, "invalid --limit -1"},
		{[]string{"read", "order-1", "--from", "x"}, `invalid argument "x" for "--from" flag`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, err := h.run("", tt.args...)
			if err == nil || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "Run 'fjord read --help'") {
				t.Errorf("got %v, stderr %q; want it to contain %q and a usage hint", err, errOut, tt.want)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	h := seed(t)
	tests := []struct {
		name string
		args []string
		want []streamJSON
	}{
		{"all", nil, []streamJSON{{"customer-7", 1, 3, zeroTime}, {"note-1", 1, 5, zeroTime}, {"order-1", 2, 4, zeroTime}, {"order-2", 1, 2, zeroTime}}},
		{"category", []string{"--category", "order"}, []streamJSON{{"order-1", 2, 4, zeroTime}, {"order-2", 1, 2, zeroTime}}},
		{"prefix", []string{"--prefix", "c"}, []streamJSON{{"customer-7", 1, 3, zeroTime}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := h.mustRun("", append([]string{"streams", "--json"}, tt.args...)...)
			var got []streamJSON
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var s streamJSON
				if err := jsonUnmarshal(line, &s); err != nil {
					t.Fatal(err)
				}
				if s.Updated.IsZero() {
					t.Errorf("stream %s has no update time", s.Stream)
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.want, got, ignoreUpdated); diff != "" {
				t.Errorf("streams (-want +got):\n%s", diff)
			}
			table := h.mustRun("", append([]string{"streams"}, tt.args...)...)
			if lines := strings.Count(table, "\n"); lines != len(tt.want)+1 {
				t.Errorf("table has %d lines, want %d:\n%s", lines, len(tt.want)+1, table)
			}
		})
	}
}
