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

	// The fields below are particular to one scenario; the others leave
	// them zero, and JSON omits them. For scale, the fields above describe
	// the appends on the full store.
	Scale
}

// Scale is what the scale scenario measures besides the appends on the
// full store. Memory is in MiB (2^20 bytes); it is measured after a forced
// garbage collection that also returns freed memory to the operating
// system, so RSSMB and HeapMB are what the process retains.
type Scale struct {
	// Streams is how many distinct streams the fill wrote to.
	Streams int `json:"streams,omitempty"`
	// FillEvents were appended, FillSeconds taking, to bring the store to
	// the configured size; FillEventsPerSec is their rate.
	FillEvents       int     `json:"fill_events,omitempty"`
	FillSeconds      float64 `json:"fill_seconds,omitempty"`
	FillEventsPerSec float64 `json:"fill_events_per_sec,omitempty"`
	// EmptyEventsPerSec and FullEventsPerSec are the append rates on the
	// empty and the full store; FullVsEmpty is their ratio.
	EmptyEventsPerSec float64 `json:"empty_events_per_sec,omitempty"`
	FullEventsPerSec  float64 `json:"full_events_per_sec,omitempty"`
	FullVsEmpty       float64 `json:"full_vs_empty,omitempty"`
	// Head is the store's head when it was closed; ReopenHead is the head
	// after reopening, which differs when the backend does not persist
	// (memstore reopens empty).
	Head       uint64 `json:"head,omitempty"`
	ReopenHead uint64 `json:"reopen_head,omitempty"`
	// ReopenMs is the time to reopen the closed store and read its head.
	ReopenMs float64 `json:"reopen_ms,omitempty"`
	// Memory after the fill: the process's resident set (VmRSS), its peak
	// so far (VmHWM) and the Go heap in use (HeapInuse). The resident
	// figures are zero where /proc/self/status does not exist. The peak is
	// process-wide: it covers everything the process did until then.
	FillRSSMB     float64 `json:"fill_rss_mb,omitempty"`
	FillPeakRSSMB float64 `json:"fill_peak_rss_mb,omitempty"`
	FillHeapMB    float64 `json:"fill_heap_mb,omitempty"`
	// The same after the reopen; PeakRSSMB is the whole run's peak.
	RSSMB     float64 `json:"rss_mb,omitempty"`
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	HeapMB    float64 `json:"heap_mb,omitempty"`
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
