package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/bench"
)

// TestBenchSQLFlags: the sizing flags reach the scenarios, and their
// figures come out as JSON.
func TestBenchSQLFlags(t *testing.T) {
	h := newHarness(t)
	out := h.mustRun("", "bench", "sql", "--scenario", "push-fanout,persistent-memory", "--events", "1000",
		"--subscribers", "3", "--pass", "10", "--keys", "500", "--dir", t.TempDir(), "--json")
	type figures struct {
		Scenario                   string
		Subscribers, Delivered     int
		Keys, SmallKeys, EventsRun int
	}
	var got []figures
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r bench.SQLResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, figures{r.Scenario, r.Subscribers, r.DeliveredPerSubscriber, r.Keys, r.SmallKeys, r.Events})
	}
	want := []figures{
		{Scenario: "push-fanout", Subscribers: 3, Delivered: 100, EventsRun: 1000},
		{Scenario: "persistent-memory", Keys: 500, SmallKeys: 100, EventsRun: 500},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
	if _, errOut, err := h.run("", "bench", "sql", "--scenario", "push-fanout", "--pass", "0.01"); err == nil || !strings.Contains(errOut, "pass percentage") {
		t.Errorf("--pass 0.01: got %v, stderr %q; want an error about the pass percentage", err, errOut)
	}
}
