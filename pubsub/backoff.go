package pubsub

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is an exponential backoff with full jitter: before retry n (1 for
// the first retry) it waits a random duration in [0, min(Max, Min·2ⁿ⁻¹)).
type backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before retry n (n ≥ 1).
func (b backoff) Delay(n int) time.Duration {
	ceil := b.Min
	for i := 1; i < n && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// wait waits d or until ctx ends, reporting ctx's error then.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
