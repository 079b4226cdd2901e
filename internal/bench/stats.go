package bench

import (
	"slices"
	"time"
)

// Result is the outcome of one scenario. Its JSON form is one line of
// `fjord bench eventstore --json`.
type Result struct {
	Scenario string `json:"scenario"`
	// Events is how many events were appended, read or delivered while
	// the clock ran (pre-populated events are not counted).
	Events int `json:"events"`
	// Ops is how many timed operations there were: appends, page or
	// stream loads, or deliveries.
	Ops          int     `json:"ops"`
	Op           string  `json:"op"` // what one operation is
	Writers      int     `json:"writers,omitempty"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	P999ms       float64 `json:"p999_ms"`
	MaxMs        float64 `json:"max_ms"`
	// Dir is the data directory, set when it was kept.
	Dir string `json:"dir,omitempty"`
}

// latencies holds one duration per operation, preallocated so that
// recording costs no allocation. Distinct goroutines may record distinct
// indexes concurrently.
type latencies []time.Duration

// summarize fills r's rate and percentile fields from the elapsed time and
// the recorded latencies. It sorts l.
func (l latencies) summarize(r *Result, elapsed time.Duration) {
	r.Ops = len(l)
	r.Seconds = elapsed.Seconds()
	if r.Seconds > 0 {
		r.EventsPerSec = float64(r.Events) / r.Seconds
	}
	slices.Sort(l)
	r.P50ms = ms(l.quantile(1, 2))
	r.P99ms = ms(l.quantile(99, 100))
	r.P999ms = ms(l.quantile(999, 1000))
	if len(l) > 0 {
		r.MaxMs = ms(l[len(l)-1])
	}
}

// quantile returns the num/den quantile by nearest rank: the smallest
// recorded duration that at least num/den of all durations do not exceed.
// l must be sorted.
func (l latencies) quantile(num, den int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	rank := (num*len(l) + den - 1) / den // ceil(num/den × n), in integers
	return l[max(rank, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
