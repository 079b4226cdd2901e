package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/bench"
)

func TestBenchEventStore(t *testing.T) {
	h := newHarness(t)
	// Each scenario needs an empty store: open a fresh one per scenario.
	a := h.app(strings.NewReader(""), nil, nil, nil)
	a.open = openStore
	var out, errOut strings.Builder
	a.stdout, a.stderr = &out, &errOut
	args := []string{"bench", "eventstore", "--scenario", "single-64w", "--scenario", "subscribe-latency,read-all",
		"--events", "600", "--streams", "10", "--dir", t.TempDir(), "--json"}
	if err := run(t.Context(), args, a); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r bench.Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.Events != 600 {
			t.Errorf("%s: %d events, want 600", r.Scenario, r.Events)
		}
		got = append(got, r.Scenario)
	}
	if diff := cmp.Diff([]string{"single-64w", "subscribe-latency", "read-all"}, got); diff != "" {
		t.Errorf("scenarios (-want +got):\n%s", diff)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "eventstore", "--scenario", "fast"}, `invalid --scenario "fast": known scenarios are single-64w`},
		{[]string{"bench", "eventstore", "--streams", "0"}, "invalid --streams 0: must be at least 1"},
		{[]string{"bench", "eventstore", "--events", "-5"}, "invalid --events -5"},
		{[]string{"bench", "eventstore", "--events", "many"}, `invalid argument "many" for "--events" flag`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, err := h.run("", tt.args...)
			if err == nil || !strings.Contains(errOut, tt.want) {
				t.Errorf("got %v, stderr %q; want it to contain %q", err, errOut, tt.want)
			}
		})
	}
}

// TestBenchScaleTable checks that scale runs with its own stream default
// (no --streams) and that the table lists its particular measurements. The
// harness's store keeps its events when closed, so the reopen finds them.
func TestBenchScaleTable(t *testing.T) {
	h := newHarness(t)
	out, errOut, err := h.run("", "bench", "eventstore", "--scenario", "scale", "--events", "2000", "--dir", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header, row and measurements:\n%s", len(lines), out)
	}
	var got []string
	for _, field := range strings.Fields(lines[2]) {
		name, _, _ := strings.Cut(field, "=")
		got = append(got, name)
	}
	want := []string{"streams", "fill_events", "fill_seconds", "fill_events_per_sec", "empty_events_per_sec",
		"full_events_per_sec", "full_vs_empty", "head", "reopen_head", "reopen_ms", "fill_rss_mb", "fill_peak_rss_mb",
		"fill_heap_mb", "rss_mb", "peak_rss_mb", "heap_mb"}
	if _, err := os.Stat("/proc/self/status"); err != nil { // no resident set sizes
		want = slices.DeleteFunc(want, func(name string) bool { return strings.HasSuffix(name, "rss_mb") })
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("measurements (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(lines[1], "scale ") || !strings.HasPrefix(lines[2], "  streams=1800 fill_events=1800 ") ||
		!strings.Contains(lines[2], " head=2200 reopen_head=2200 ") {
		t.Errorf("table:\n%s", out)
	}
}
