package backoff_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fjord-data/fjord/internal/backoff"
)

func TestCeiling(t *testing.T) {
	for _, tc := range []struct {
		base, limit time.Duration
		attempt     int
		want        time.Duration
	}{
		{10, 1000, 1, 10},
		{10, 1000, 2, 20},
		{10, 1000, 4, 80},
		{10, 1000, 8, 1000},
		{10, 1000, 0, 10},
		{time.Second, time.Minute, 40, time.Minute}, // would overflow
		{math.MaxInt64 / 3, math.MaxInt64, 3, math.MaxInt64}, // overflows into the sign
		{time.Hour, time.Minute, 1, time.Minute},             // base above the cap
		{0, time.Minute, 5, time.Minute},                     // no base: the cap
	} {
		if got := backoff.Ceiling(tc.base, tc.limit, tc.attempt); got != tc.want {
			t.Errorf("Ceiling(%v, %v, %d) = %v, want %v", tc.base, tc.limit, tc.attempt, got, tc.want)
		}
	}
}

func TestJitterBounds(t *testing.T) {
	for attempt := 1; attempt < 70; attempt++ {
		c := backoff.Ceiling(time.Millisecond, time.Second, attempt)
		for range 50 {
			if d := backoff.Full(time.Millisecond, time.Second, attempt); d <= 0 || d > c {
				t.Fatalf("Full attempt %d = %v, want in (0, %v]", attempt, d, c)
			}
			if d := backoff.Equal(time.Millisecond, time.Second, attempt); d < c/2 || d > c {
				t.Fatalf("Equal attempt %d = %v, want in [%v, %v]", attempt, d, c/2, c)
			}
		}
	}
	if d := backoff.Full(0, 0, 3); d != 0 {
		t.Errorf("Full with no ceiling = %v, want 0", d)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := backoff.Sleep(t.Context(), time.Second); err != nil || time.Since(start) != time.Second {
			t.Errorf("Sleep = %v after %v, want nil after 1s", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep past the deadline = %v, want DeadlineExceeded", err)
		}
		if err := backoff.Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep(0) on an ended context = %v, want its error", err)
		}
	})
}
