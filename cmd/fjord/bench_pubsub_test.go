package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/internal/bench"
)

// TestBenchPubSub runs every scenario on a small scale over the embedded
// server, and over the external one when FJORD_TEST_NATS is set.
func TestBenchPubSub(t *testing.T) {
	brokers := map[string][]string{"embedded": {"--dir", t.TempDir()}}
	if url := os.Getenv("FJORD_TEST_NATS"); url != "" {
		brokers["external"] = []string{"--nats", url}
	}
	for name, flags := range brokers {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			var out, errOut strings.Builder
			a := h.app(strings.NewReader(""), &out, &errOut, nil)
			args := append([]string{"bench", "pubsub", "--messages", "300", "--rate", "3000", "--publishers", "4", "--json"}, flags...)
			if err := run(t.Context(), args, a); err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var r bench.Result
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if r.Events != 300 || r.Ops != 300 || r.P50ms <= 0 || r.P99ms < r.P50ms {
					t.Errorf("%s: %d messages, %d ops, p50 %v ms, p99 %v ms; want 300 timed messages", r.Scenario, r.Events, r.Ops, r.P50ms, r.P99ms)
				}
				got = append(got, r.Scenario)
			}
			if diff := cmp.Diff([]string{"publish", "e2e-rate", "e2e-max"}, got); diff != "" {
				t.Errorf("scenarios (-want +got):\n%s", diff)
			}
			if entries, _ := os.ReadDir(flags[1]); name == "embedded" && len(entries) != 0 {
				t.Errorf("the embedded server's store was left in --dir: %v", entries)
			}
		})
	}
}

func TestBenchPubSubUsage(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "pubsub", "--scenario", "fast"}, `invalid --scenario "fast": known scenarios are publish, e2e-rate, e2e-max`},
		{[]string{"bench", "pubsub", "--rate", "0"}, "invalid --rate 0: must be at least 1"},
		{[]string{"bench", "pubsub", "--messages", "-1"}, "invalid --messages -1"},
	} {
		_, errOut, err := h.run("", tt.args...)
		if err == nil || !strings.Contains(errOut, tt.want) {
			t.Errorf("fjord %v: %v, stderr %q; want it to contain %q", tt.args, err, errOut, tt.want)
		}
	}
}
