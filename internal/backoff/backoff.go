// Package backoff computes jittered exponential delays between retries and
// waits them, for the packages that retry on their own (aggregate,
// projection, pubsub, outbox). It imports only the standard library.
//
//	for attempt := 1; ; attempt++ {
//		if err = try(); err == nil || attempt == max {
//			break
//		}
//		if err := backoff.Sleep(ctx, backoff.Full(base, ceiling, attempt)); err != nil {
//			return err
//		}
//	}
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Ceiling is the exponential bound after the given failed attempt (1 for
// the first): base·2^(attempt−1), capped at limit (also when it overflows).
func Ceiling(base, limit time.Duration, attempt int) time.Duration {
	shift := min(max(attempt-1, 0), 62)
	c := base << shift
	if c <= 0 || c > limit || c>>shift != base {
		return limit
	}
	return c
}

// Full is a full-jitter delay: uniform in (0, Ceiling]; 0 when the ceiling
// is not positive.
func Full(base, limit time.Duration, attempt int) time.Duration {
	c := Ceiling(base, limit, attempt)
	if c <= 0 {
		return 0
	}
	return rand.N(c) + 1
}

// Equal is an equal-jitter delay: uniform in [Ceiling/2, Ceiling], which
// keeps a floor between attempts; 0 when the ceiling is not positive.
func Equal(base, limit time.Duration, attempt int) time.Duration {
	c := Ceiling(base, limit, attempt)
	if c <= 0 {
		return 0
	}
	return c/2 + rand.N(c/2+1)
}

// Sleep waits d, or until ctx ends and then returns ctx's error. A d that is
// not positive returns at once (with ctx's error if it has ended).
func Sleep(ctx context.Context, d time.Duration) error {
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
