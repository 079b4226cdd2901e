package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		lat  latencies
		want Result
	}{
		{"empty", nil, Result{Events: 10, Seconds: 2, EventsPerSec: 5}},
		{"one", latencies{3 * time.Millisecond}, Result{Events: 10, Ops: 1, Seconds: 2, EventsPerSec: 5, P50ms: 3, P99ms: 3, P999ms: 3, MaxMs: 3}},
		{"hundred", ramp(100), Result{Events: 10, Ops: 100, Seconds: 2, EventsPerSec: 5, P50ms: 50, P99ms: 99, P999ms: 100, MaxMs: 100}},
		{"thousand", ramp(1000), Result{Events: 10, Ops: 1000, Seconds: 2, EventsPerSec: 5, P50ms: 500, P99ms: 990, P999ms: 999, MaxMs: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Result{Events: 10}
			tt.lat.summarize(&got, 2*time.Second)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// ramp returns n latencies of n, n-1, … 1 milliseconds (unsorted).
func ramp(n int) latencies {
	l := make(latencies, n)
	for i := range l {
		l[i] = time.Duration(n-i) * time.Millisecond
	}
	return l
}

func TestPayloadIsJSONOfTheRightSize(t *testing.T) {
	for _, n := range []int{1, 5, 10, 256} {
		p := payload(n)
		if len(p) != n || !json.Valid(p) {
			t.Errorf("payload(%d) = %q, want %d bytes of JSON", n, p, n)
		}
	}
}
