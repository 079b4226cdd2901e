package resilience

import (
	"math"
	"sync/atomic"
	"time"
)

// A window counts events in a ring of buckets. Each bucket belongs to one
// generation (a second of a time window, or a run of calls of a count
// window); a bucket found holding an older generation is reset by the
// first writer of the new one. Writers use atomics only. Counts are exact
// except that a write racing with a bucket's reset can be lost, which only
// matters at the instant a bucket rolls over.
type window struct {
	b []bucket
}

type bucket struct {
	gen     atomic.Int64
	a, b, c atomic.Int64 // calls, failures, slow (breaker); calls, retries (budget)
	_       [32]byte     // keep buckets on separate cache lines
}

const staleGen = math.MinInt64 / 2

func newWindow(n int) window {
	w := window{b: make([]bucket, n)}
	w.reset()
	return w
}

// reset forgets every bucket.
func (w *window) reset() {
	for i := range w.b {
		w.b[i].gen.Store(staleGen)
	}
}

// add counts deltas in the bucket of generation gen and returns the
// bucket's first count afterwards (0 when the write came too late).
func (w *window) add(gen, da, db, dc int64) int64 {
	bk := &w.b[gen%int64(len(w.b))]
	if g := bk.gen.Load(); g != gen {
		if g > gen {
			return 0 // a late write for a bucket that has moved on
		}
		if bk.gen.CompareAndSwap(g, gen) {
			bk.a.Store(0)
			bk.b.Store(0)
			bk.c.Store(0)
		}
	}
	if db != 0 {
		bk.b.Add(db)
	}
	if dc != 0 {
		bk.c.Add(dc)
	}
	if da != 0 {
		return bk.a.Add(da)
	}
	return bk.a.Load()
}

// calls returns the first count of generation gen's bucket.
func (w *window) calls(gen int64) int64 {
	bk := &w.b[gen%int64(len(w.b))]
	if bk.gen.Load() != gen {
		return 0
	}
	return bk.a.Load()
}

// sum adds up the buckets of generations gen-len+1 through gen.
func (w *window) sum(gen int64) (a, b, c int64) {
	lo := gen - int64(len(w.b))
	for i := range w.b {
		bk := &w.b[i]
		if g := bk.gen.Load(); g > lo && g <= gen {
			a += bk.a.Load()
			b += bk.b.Load()
			c += bk.c.Load()
		}
	}
	return a, b, c
}

// clock measures monotonic time as nanoseconds since an epoch with one
// clock read; policies keep their own epoch, and a pipeline converts its
// reading to a policy's with a fixed offset.
type clock struct{ epoch time.Time }

func newClock() clock { return clock{epoch: time.Now()} }

func (c clock) now() int64 { return int64(time.Since(c.epoch)) }

// offset returns what to add to c's readings to get d's.
func (c clock) offset(d clock) int64 { return int64(c.epoch.Sub(d.epoch)) }
