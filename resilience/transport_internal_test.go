package resilience

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzRetryAfter: any header value parses without panicking to a
// non-negative wait, and whole seconds parse exactly.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 02 Jan 2006 15:04:05 MST", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := retryAfter(v)
		if d < 0 {
			t.Fatalf("retryAfter(%q) = %v, negative", v, d)
		}
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < 1<<30 && d != time.Duration(n)*time.Second {
			t.Fatalf("retryAfter(%q) = %v, want %ds", v, d, n)
		}
	})
}

func TestRetryAfterDate(t *testing.T) {
	later := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if d := retryAfter(later); d < 59*time.Minute || d > time.Hour {
		t.Errorf("retryAfter(an hour from now) = %v", d)
	}
}

// TestRetryAfterHuge: a number of seconds too large for int64 is a very
// long wait (the retry gives up), not "retry at once".
func TestRetryAfterHuge(t *testing.T) {
	for _, v := range []string{"9300000000", "99999999999999999999", "999999999999999999999999999999"} {
		if d := retryAfter(v); d < 100*365*24*time.Hour {
			t.Errorf("retryAfter(%q) = %v, want a very long wait", v, d)
		}
	}
}

// TestBackoffCeilingOverflow: BaseDelay × 2^(attempt-1) beyond int64 is
// capped at MaxDelay, not wrapped around to a small ceiling.
func TestBackoffCeilingOverflow(t *testing.T) {
	r := Retry{MaxAttempts: 40, BaseDelay: 1<<33 + 1, MaxDelay: time.Minute}
	if err := r.normalize(); err != nil {
		t.Fatal(err)
	}
	var longest time.Duration
	for range 200 {
		d, reason := r.backoff(32, nil)
		if reason != "" {
			t.Fatal(reason)
		}
		longest = max(longest, d)
	}
	if longest < 10*time.Second {
		t.Errorf("longest of 200 backoffs after attempt 32 = %v; want them spread up to MaxDelay %v", longest, r.MaxDelay)
	}
}
