package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/bench"
)

// TestBenchOutbox runs both scenarios on a small scale over the embedded
// server.
func TestBenchOutbox(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t)
	var out, errOut strings.Builder
	a := h.app(strings.NewReader(""), &out, &errOut, nil)
	args := []string{"bench", "outbox", "--messages", "300", "--rate", "3000", "--tx-size", "7", "--json", "--dir", dir}
	if err := run(t.Context(), args, a); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r bench.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.Events != 300 || r.Ops != 300 || r.P50ms <= 0 || r.P99ms < r.P50ms || r.EventsPerSec <= 0 {
			t.Errorf("%s: %d messages, %d ops, p50 %v ms, p99 %v ms, %v msg/s; want 300 timed messages",
				r.Scenario, r.Events, r.Ops, r.P50ms, r.P99ms, r.EventsPerSec)
		}
		got = append(got, r.Scenario)
	}
	if diff := cmp.Diff([]string{"sustained", "e2e-rate"}, got); diff != "" {
		t.Errorf("scenarios (-want +got):\n%s", diff)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the bench left files in --dir: %v", entries)
	}
}

func TestBenchOutboxInvalidFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "outbox", "--scenario", "nope"},
		{"bench", "outbox", "--tx-size", "0"},
	} {
		h := newHarness(t)
		var out, errOut strings.Builder
		a := h.app(strings.NewReader(""), &out, &errOut, nil)
		if err := run(t.Context(), args, a); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
