package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppend(t *testing.T) {
	h := newHarness(t)
	steps := []struct {
		name    string
		stdin   string
		args    []string
		wantOut string
		wantErr string // substring of stderr; "" means success
	}{
		{"first", "", []string{"append", "order-1", "OrderPlaced", `{"total": 42}`, "--expected", "no-stream"},
			"appended to order-1: version 1, position 1\n", ""},
		{"stdin", `{"total":43}`, []string{"append", "order-1", "OrderAmended", "--expected", "1"},
			"appended to order-1: version 2, position 2\n", ""},
		{"dash is stdin", `{}`, []string{"append", "order-2", "OrderPlaced", "-", "--expected", "exists"},
			"", "wrong expected version: expected stream exists, but the stream is at version 0"},
		{"wrong version", "", []string{"append", "order-1", "OrderAmended", "{}", "--expected", "1"},
			"", "wrong expected version: expected version 1, but the stream is at version 2"},
		{"no stream but exists", "", []string{"append", "order-1", "X", "{}", "--expected", "no-stream"},
			"", "expected no stream, but the stream is at version 2"},
		{"with id", "", []string{"append", "order-1", "Paid", "{}", "--id", "0190f2a0-0000-7000-8000-000000000001",
			"--metadata", `{"user":"ann"}`, "--correlation", "c1", "--causation", "c0", "--content-type", "application/json"},
			"appended to order-1: version 3, position 3\n", ""},
		{"same id again", "", []string{"append", "order-1", "Paid", "{}", "--id", "0190f2a0-0000-7000-8000-000000000001",
			"--metadata", `{"user":"ann"}`, "--correlation", "c1", "--causation", "c0"},
			"already appended (same event ID) to order-1: version 3, position 3\n", ""},
		{"text payload", "", []string{"append", "note-1", "Noted", "plain text", "--content-type", "text/plain"},
			"appended to note-1: version 1, position 4\n", ""},
		{"bad json", "", []string{"append", "order-1", "X", "{nope"}, "", "DATA is not valid JSON"},
		{"bad expected", "", []string{"append", "order-1", "X", "{}", "--expected", "-1"}, "", `invalid --expected "-1"`},
		{"bad id", "", []string{"append", "order-1", "X", "{}", "--id", "123"}, "", `invalid --id "123"`},
		{"bad metadata", "", []string{"append", "order-1", "X", "{}", "--metadata", "{"}, "", "invalid --metadata"},
		{"missing type", "", []string{"append", "order-1"}, "", "missing TYPE"},
		{"extra arg", "", []string{"append", "a", "b", "{}", "d"}, "", `unexpected argument "d"`},
		{"unknown flag", "", []string{"append", "a", "b", "{}", "--nope"}, "", "unknown flag: --nope"},
		{"reserved stream", "", []string{"append", "$all", "X", "{}"}, "", "reserved"},
	}
	for _, s := range steps {
		out, errOut, err := h.run(s.stdin, s.args...)
		if s.wantErr == "" && err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, errOut)
		}
		if s.wantErr != "" && (err == nil || !strings.Contains(errOut, s.wantErr)) {
			t.Errorf("%s: got error %v, stderr %q; want stderr containing %q", s.name, err, errOut, s.wantErr)
		}
		if diff := cmp.Diff(s.wantOut, out); diff != "" {
			t.Errorf("%s: stdout (-want +got):\n%s", s.name, diff)
		}
	}
	evs := decodeEvents(t, h.mustRun("", "read", "order-1", "--json"))
	want := []eventJSON{
		{Position: 1, Stream: "order-1", Version: 1, Type: "OrderPlaced", ContentType: "application/json", Data: []byte(`{"total":42}`)},
		{Position: 2, Stream: "order-1", Version: 2, Type: "OrderAmended", ContentType: "application/json", Data: []byte(`{"total":43}`)},
		{Position: 3, Stream: "order-1", Version: 3, Type: "Paid", ContentType: "application/json", Data: []byte(`{}`),
			Metadata: []byte(`{"user":"ann"}`), CorrelationID: "c1", CausationID: "c0"},
	}
	if diff := cmp.Diff(want, evs, ignoreUnknowable); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if evs[2].ID != "0190f2a0-0000-7000-8000-000000000001" {
		t.Errorf("event ID %s, want the one given with --id", evs[2].ID)
	}
}
