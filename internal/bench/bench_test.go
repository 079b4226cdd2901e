package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/internal/bench"
)

func openMem(dir string) (*eventstore.Store, error) { return eventstore.New(memstore.New(), nil), nil }

func TestEventStoreScenarios(t *testing.T) {
	tests := []struct {
		scenario string
		events   int
		want     int // events counted in the result
	}{
		{"single-64w", 300, 300},
		{"batch100-8w", 250, 300}, // rounded up to whole appends
		{"single-1w", 20, 20},
		{"read-all", 1100, 1100},
		{"read-stream", 500, 500},
		{"subscribe-latency", 50, 50},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			parent := t.TempDir()
			results, err := bench.EventStore(t.Context(), openMem, bench.Config{
				Scenarios: []string{tt.scenario}, Events: tt.events, Streams: 7, Dir: parent})
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 1 {
				t.Fatalf("got %d results, want 1", len(results))
			}
			var line bytes.Buffer
			if err := json.NewEncoder(&line).Encode(results[0]); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(line.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for _, field := range []string{"scenario", "events", "seconds", "events_per_sec", "p50_ms", "p99_ms", "p999_ms"} {
				if _, ok := got[field]; !ok {
					t.Errorf("JSON %s has no field %q", line.Bytes(), field)
				}
			}
			r := results[0]
			if diff := cmp.Diff(struct {
				Scenario string
				Events   int
			}{tt.scenario, tt.want}, struct {
				Scenario string
				Events   int
			}{r.Scenario, r.Events}); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if r.Ops == 0 || r.Seconds <= 0 || r.EventsPerSec <= 0 || r.P50ms > r.P99ms || r.P99ms > r.P999ms || r.P999ms > r.MaxMs {
				t.Errorf("implausible result %+v", r)
			}
			left, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("data directories left behind: %v", left)
			}
		})
	}
}

func TestEventStoreKeep(t *testing.T) {
	parent := t.TempDir()
	results, err := bench.EventStore(t.Context(), openMem, bench.Config{
		Scenarios: []string{"single-1w"}, Events: 3, Dir: parent, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(results[0].Dir); err != nil {
		t.Errorf("kept directory: %v", err)
	}
}

func TestEventStoreErrors(t *testing.T) {
	var unknown *bench.UnknownScenarioError
	_, err := bench.EventStore(t.Context(), openMem, bench.Config{Scenarios: []string{"nope"}})
	if !errors.As(err, &unknown) || unknown.Name != "nope" {
		t.Errorf("unknown scenario: got %v, want an UnknownScenarioError naming it", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = bench.EventStore(ctx, openMem, bench.Config{Scenarios: []string{"single-64w"}, Events: 10, Dir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
	boom := errors.New("boom")
	_, err = bench.EventStore(t.Context(), func(string) (*eventstore.Store, error) { return nil, boom },
		bench.Config{Scenarios: []string{"single-1w"}, Dir: t.TempDir()})
	if !errors.Is(err, boom) {
		t.Errorf("open failure: got %v, want boom", err)
	}
}

func TestDefaultScenarios(t *testing.T) {
	want := []string{"single-64w", "batch100-8w", "single-1w", "read-all", "read-stream", "subscribe-latency"}
	if diff := cmp.Diff(want, bench.DefaultScenarios()); diff != "" {
		t.Errorf("default scenarios (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(want, "scale"), bench.Scenarios()); diff != "" {
		t.Errorf("all scenarios (-want +got):\n%s", diff)
	}
}

// TestScale runs scale on memstore, which reopens empty: the scenario
// reports that instead of failing.
func TestScale(t *testing.T) {
	parent := t.TempDir()
	results, err := bench.EventStore(t.Context(), openMem, bench.Config{
		Scenarios: []string{"scale"}, Events: 2000, Streams: 100, Dir: parent})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("got %d results, want 1", len(results))
	}
	r := results[0]
	line, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		t.Fatal(err)
	}
	want := []string{"scenario", "events", "seconds", "events_per_sec", "p50_ms", "p99_ms", "p999_ms",
		"streams", "fill_events", "fill_events_per_sec", "empty_events_per_sec", "full_events_per_sec",
		"full_vs_empty", "head", "reopen_ms", "fill_heap_mb", "heap_mb"}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		want = append(want, "fill_rss_mb", "fill_peak_rss_mb", "rss_mb", "peak_rss_mb")
	}
	for _, field := range want {
		if _, ok := fields[field]; !ok {
			t.Errorf("JSON %s has no field %q", line, field)
		}
	}

	type counts struct {
		Scenario, Op                      string
		Events, Writers, Streams, FillEvs int
		Head                              uint64
	}
	// 200 events (a tenth) on the empty store, a fill to 2,000 with 18
	// events per append to reach all 100 streams, 200 on the full store.
	wantCounts := counts{Scenario: "scale", Op: "append", Events: 200, Writers: 64, Streams: 100, FillEvs: 1800, Head: 2200}
	gotCounts := counts{r.Scenario, r.Op, r.Events, r.Writers, r.Streams, r.FillEvents, r.Head}
	if diff := cmp.Diff(wantCounts, gotCounts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if r.ReopenHead != 0 && r.ReopenHead != r.Head {
		t.Errorf("head %d after reopening, want 0 (memstore) or %d", r.ReopenHead, r.Head)
	}
	if r.FullEventsPerSec != r.EventsPerSec || r.EmptyEventsPerSec <= 0 || r.FillEventsPerSec <= 0 ||
		r.FullVsEmpty <= 0 || r.ReopenMs <= 0 || r.HeapMB <= 0 || r.FillHeapMB <= 0 || r.PeakRSSMB < r.RSSMB ||
		r.FillPeakRSSMB < r.FillRSSMB || r.PeakRSSMB < r.FillPeakRSSMB {
		t.Errorf("implausible result %+v", r)
	}
	if got, want := r.FullVsEmpty, r.FullEventsPerSec/r.EmptyEventsPerSec; got != want {
		t.Errorf("full_vs_empty = %v, want %v", got, want)
	}
	left, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("data directories left behind: %v", left)
	}
}
