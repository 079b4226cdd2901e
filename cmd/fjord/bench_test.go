package main

import (
	"encoding/json"
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
