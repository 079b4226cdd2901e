package pubsub

import (
	"time"

	"github.com/fjord-data/fjord/internal/backoff"
)

// delays is an exponential backoff with full jitter: before retry n (1 for
// the first retry) it waits a random duration in (0, min(Max, Min·2ⁿ⁻¹)].
type delays struct {
	Min, Max time.Duration
}

// Delay returns the wait before retry n (n ≥ 1).
func (b delays) Delay(n int) time.Duration { return backoff.Full(b.Min, b.Max, n) }
