package resilience

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Breakers is a bounded registry of circuit breakers, one per dependency,
// all built from the same options. Used as a policy, it picks the breaker
// named by WithDependency in the call's context (the Transport sets the
// request's host), or the pipeline's name. It is safe for concurrent use.
//
// When a new dependency would exceed Max, the least recently used closed
// breaker is dropped (or, if none is closed, the least recently used one),
// so that names taken from requests cannot grow memory without bound.
type Breakers struct {
	o   BreakerOptions
	max int
	clk clock

	m  sync.Map // string → *entry; lookups are lock-free
	mu struct {
		sync.Mutex
		n int // entries in m
	}
}

type entry struct {
	b       *Breaker
	lastUse atomic.Int64 // registry time, updated at most once a second
}

// NewBreakers returns a registry holding at most max breakers (0: 1,000),
// or a *ConfigError.
func NewBreakers(max int, o BreakerOptions) (*Breakers, error) {
	if max < 0 {
		return nil, configErr("breakers registry", fmt.Sprintf("max %d is negative", max), "use 0 for the default of 1,000 or a positive bound")
	}
	if max == 0 {
		max = 1000
	}
	if err := o.normalize("*"); err != nil {
		return nil, err
	}
	return &Breakers{o: o, max: max, clk: newClock()}, nil
}

// Get returns the breaker for dependency, creating it closed if needed.
func (r *Breakers) Get(dependency string) *Breaker {
	now := r.clk.now()
	if v, ok := r.m.Load(dependency); ok {
		e := v.(*entry)
		if now-e.lastUse.Load() > int64(time.Second) {
			e.lastUse.Store(now)
		}
		return e.b
	}
	return r.create(dependency, now)
}

func (r *Breakers) create(dependency string, now int64) *Breaker {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.m.Load(dependency); ok {
		return v.(*entry).b
	}
	if r.mu.n >= r.max {
		r.evictLocked()
	}
	e := &entry{b: newBreaker(dependency, r.o, r.clk)}
	e.lastUse.Store(now)
	r.m.Store(dependency, e)
	r.mu.n++
	return e.b
}

// evictLocked drops the least recently used breaker, preferring closed ones.
func (r *Breakers) evictLocked() {
	var victim string
	var oldest int64
	closed := false
	r.m.Range(func(k, v any) bool {
		e := v.(*entry)
		isClosed := e.b.State() == StateClosed
		t := e.lastUse.Load()
		if victim == "" || (isClosed && !closed) || (isClosed == closed && t < oldest) {
			victim, oldest, closed = k.(string), t, isClosed
		}
		return true
	})
	r.m.Delete(victim)
	r.mu.n--
}

// Len returns the number of breakers held.
func (r *Breakers) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.n
}

// All calls yield with every breaker held, in no particular order (for the
// console and metrics).
func (r *Breakers) All(yield func(*Breaker) bool) {
	r.m.Range(func(_, v any) bool { return yield(v.(*entry).b) })
}

// String describes the registry as Pipeline.String prints it.
func (r *Breakers) String() string { return fmt.Sprintf("breakers(per dependency, max %d)", r.max) }
