package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience"
	"github.com/fjord-data/fjord/resilience/httpcache"
	"github.com/fjord-data/fjord/telemetry"
)

// TestResilientCallTrace: a call through the cache and the policies to a
// dependency that went down shows, in its span, the retries, the give-up,
// the fallback and the cache's verdict; and the metrics count them.
func TestResilientCallTrace(t *testing.T) {
	tel := setup(t, nil)
	m, err := telemetry.NewResilienceMetrics(tel.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=0") // stored (it has a validator), stale at once
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, "price 42")
	}))
	defer srv.Close()

	cache := httpcache.New(http.DefaultTransport, nil)
	defer cache.Close()
	breakers, err := resilience.NewBreakers(16, resilience.BreakerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := resilience.NewTransport(cache, resilience.TransportOptions{Options: resilience.Options{Hooks: telemetry.ResilienceHooks(m)}},
		cache.FallbackPolicy(time.Hour), resilience.Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}, breakers)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tel.Transport(rt)}
	get := func() string {
		resp, err := client.Get(srv.URL + "/price")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(body) + " " + resp.Header.Get(httpcache.DefaultStatusHeader)
	}
	if got, want := get(), "200 OK price 42 miss"; got != want {
		t.Fatalf("first call = %q, want %q", got, want)
	}
	down.Store(true)
	if got, want := get(), "200 OK price 42 fallback"; got != want {
		t.Fatalf("call while down = %q, want %q", got, want)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("dependency got %d requests, want 4 (one, then three attempts)", got)
	}

	traces := tel.Viewer.Traces()
	if len(traces) != 2 {
		t.Fatalf("got %d traces, want 2", len(traces))
	}
	spans, _ := tel.Viewer.Trace(traces[0].TraceID) // the newest: the call while down
	span := spans[0]
	var events []string
	for _, e := range span.Events {
		events = append(events, e.Name+" attempt="+e.Attributes["attempt"])
	}
	want := []string{"resilience.retry attempt=1", "resilience.retry attempt=2", "resilience.giveup attempt=3", "resilience.fallback attempt="}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("span events (-want +got):\n%s", diff)
	}
	if got := span.Attributes["fjord.cache"]; got != "fallback" {
		t.Errorf("span attribute fjord.cache = %q, want fallback", got)
	}

	rec := httptest.NewRecorder()
	tel.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	host := strings.TrimPrefix(srv.URL, "http://")
	var lines []string
	for l := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "fjord_resilience_") && !strings.Contains(l, "_bucket") && !strings.Contains(l, "duration") {
			lines = append(lines, strings.ReplaceAll(l, host, "HOST"))
		}
	}
	slices.Sort(lines)
	wantLines := []string{
		`fjord_resilience_calls_total{dependency="HOST",outcome="failure"} 3`,
		`fjord_resilience_calls_total{dependency="HOST",outcome="success"} 1`,
		`fjord_resilience_fallbacks_total{dependency="HOST"} 1`,
		`fjord_resilience_giveups_total{dependency="HOST"} 1`,
		`fjord_resilience_retries_total{dependency="HOST"} 2`,
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
