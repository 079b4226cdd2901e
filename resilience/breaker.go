package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// State is a circuit breaker's state.
type State int32

// The breaker states. Closed lets calls through and counts their outcomes;
// open rejects them with ErrOpen; half-open lets a fixed number of probes
// through and closes or reopens on their results.
const (
	StateClosed State = iota
	StateOpen
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// BreakerOptions configure a Breaker. The zero value works: a count window
// of 100 calls, tripping at a 50% failure rate once 20 calls were seen, open
// for 30s, then 5 half-open probes; slow calls are not tracked.
type BreakerOptions struct {
	// FailureRate trips the breaker when failures/calls in the window
	// reaches it. In (0, 1]; default 0.5.
	FailureRate float64
	// SlowCall is the duration from which a call counts as slow (also when
	// it succeeds, and when the caller's own deadline ended it: the
	// dependency did not answer in time); 0 disables slow-call tracking.
	SlowCall time.Duration
	// SlowCallRate trips the breaker when slow/calls in the window reaches
	// it. In (0, 1]; default 1. Used only with SlowCall.
	SlowCallRate float64
	// WindowCalls is the size of a sliding count window (default 100).
	// Exactly one of WindowCalls and WindowDuration may be set.
	WindowCalls int
	// WindowDuration selects a sliding time window of this many whole
	// seconds (one bucket per second, at most one hour).
	WindowDuration time.Duration
	// MinCalls is the number of calls the window must hold before the
	// rates are evaluated (default 20, at most WindowCalls).
	MinCalls int
	// OpenFor is how long the breaker stays open before probing (default 30s).
	OpenFor time.Duration
	// HalfOpenProbes is how many calls a half-open breaker lets through;
	// when all have finished it closes if their rates are below the
	// thresholds and reopens otherwise (default 5).
	HalfOpenProbes int
	// Hooks.OnStateChange is called on every transition.
	Hooks Hooks
	// Logger receives a record per transition (nil: discard).
	Logger *slog.Logger
}

// Breaker is a circuit breaker for one dependency. It is safe for
// concurrent use, and may be shared by several pipelines. Outcomes are
// classified by the pipeline: success, failure (an error, or a timeout),
// slow, or neutral (context cancellation of the caller, errors declared
// neutral with Options.Neutral, rejections by other policies), which is not
// counted at all.
type Breaker struct {
	name      string
	o         BreakerOptions
	clk       clock
	log       *slog.Logger
	perBucket int64 // count windows: calls per bucket; 0 for time windows

	state     atomic.Uint64 // generation<<2 | State; the generation changes on every transition
	openUntil atomic.Int64  // breaker time when an open breaker starts probing
	cur       atomic.Int64  // count windows: the generation being filled
	win       window
	probes    atomic.Int64 // half-open permits left
	probeDone atomic.Int64 // half-open outcomes recorded
	probeFail atomic.Int64
	probeSlow atomic.Int64

	mu sync.Mutex // serialises transitions; never held while calling hooks
}

// NewBreaker returns a closed breaker for the named dependency, or a
// *ConfigError saying which option to change.
func NewBreaker(dependency string, o BreakerOptions) (*Breaker, error) {
	if err := o.normalize(dependency); err != nil {
		return nil, err
	}
	return newBreaker(dependency, o, newClock()), nil
}

func newBreaker(dependency string, o BreakerOptions, clk clock) *Breaker {
	b := &Breaker{name: dependency, o: o, clk: clk, log: o.Logger}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if o.WindowDuration > 0 {
		b.win = newWindow(int(o.WindowDuration / time.Second))
	} else {
		b.perBucket = int64((o.WindowCalls + 9) / 10)
		b.win = newWindow(int((int64(o.WindowCalls) + b.perBucket - 1) / b.perBucket))
	}
	return b
}

func (o *BreakerOptions) normalize(name string) error {
	p := fmt.Sprintf("breaker %q", name)
	switch {
	case o.FailureRate < 0 || o.FailureRate > 1:
		return configErr(p, "FailureRate %v is not a fraction", "use a value in (0, 1], e.g. 0.5 for 50%", o.FailureRate)
	case o.SlowCallRate < 0 || o.SlowCallRate > 1:
		return configErr(p, "SlowCallRate %v is not a fraction", "use a value in (0, 1], e.g. 0.8 for 80%", o.SlowCallRate)
	case o.SlowCall < 0:
		return configErr(p, "SlowCall %v is negative", "use 0 to disable slow-call tracking or a positive duration", o.SlowCall)
	case o.WindowCalls < 0 || o.MinCalls < 0 || o.HalfOpenProbes < 0:
		return configErr(p, "WindowCalls, MinCalls and HalfOpenProbes must not be negative (got %d, %d, %d)",
			"use 0 for the default or a positive size", o.WindowCalls, o.MinCalls, o.HalfOpenProbes)
	case o.OpenFor < 0 || o.WindowDuration < 0:
		return configErr(p, "OpenFor %v or WindowDuration %v is negative", "use 0 for the default or a positive duration", o.OpenFor, o.WindowDuration)
	case o.WindowCalls > 0 && o.WindowDuration > 0:
		return configErr(p, "both WindowCalls and WindowDuration are set", "set WindowCalls for a count window or WindowDuration for a time window, not both")
	case o.WindowDuration > 0 && (o.WindowDuration%time.Second != 0 || o.WindowDuration > time.Hour):
		return configErr(p, "WindowDuration %v is not a whole number of seconds up to an hour", "use e.g. 10*time.Second (one bucket per second)", o.WindowDuration)
	case o.WindowCalls > 1_000_000:
		return configErr(p, "WindowCalls %d is too large", "use at most 1,000,000 calls, or a time window", o.WindowCalls)
	}
	if o.FailureRate == 0 {
		o.FailureRate = 0.5
	}
	if o.SlowCallRate == 0 {
		o.SlowCallRate = 1
	}
	if o.WindowCalls == 0 && o.WindowDuration == 0 {
		o.WindowCalls = 100
	}
	if o.MinCalls == 0 {
		o.MinCalls = min(20, max(o.WindowCalls, 1))
		if o.WindowDuration > 0 {
			o.MinCalls = 20
		}
	}
	if o.WindowCalls > 0 && o.MinCalls > o.WindowCalls {
		return configErr(p, fmt.Sprintf("MinCalls %d exceeds the window of %d calls, so the breaker could never trip", o.MinCalls, o.WindowCalls),
			"lower MinCalls or raise WindowCalls")
	}
	if o.OpenFor == 0 {
		o.OpenFor = 30 * time.Second
	}
	if o.HalfOpenProbes == 0 {
		o.HalfOpenProbes = 5
	}
	return nil
}

// Name returns the dependency's name.
func (b *Breaker) Name() string { return b.name }

// State returns the current state. An open breaker whose OpenFor has passed
// reports open until the next call moves it to half-open.
func (b *Breaker) State() State { return State(b.state.Load() & 3) }

// Counts returns the calls, failures and slow calls in the current window.
func (b *Breaker) Counts() (calls, failures, slow int64) {
	g := b.gen(b.clk.now())
	if b.perBucket > 0 && g > 0 && b.win.calls(g) == 0 {
		g-- // the bucket being filled is empty: the window ends with the previous one
	}
	return b.win.sum(g)
}

// String describes the breaker as Pipeline.String prints it.
func (b *Breaker) String() string { return fmt.Sprintf("breaker(%q)", b.name) }

// gen returns the window generation to record in: a second of a time
// window, a bucket of a count window.
func (b *Breaker) gen(now int64) int64 {
	if b.perBucket > 0 {
		return b.cur.Load()
	}
	return now / int64(time.Second)
}

// acquire asks to run a call. The token identifies the state period the
// call was admitted in; pass it to record.
func (b *Breaker) acquire() (uint64, error) {
	s := b.state.Load()
	switch State(s & 3) {
	case StateClosed:
		return s, nil
	case StateOpen:
		now, until := b.clk.now(), b.openUntil.Load()
		if now < until {
			return 0, &OpenError{Dependency: b.name, State: StateOpen, RetryIn: time.Duration(until - now)}
		}
		s = b.toHalfOpen(s)
		if State(s&3) == StateClosed {
			return s, nil
		}
		if State(s&3) == StateOpen {
			return 0, &OpenError{Dependency: b.name, State: StateOpen, RetryIn: time.Duration(b.openUntil.Load() - now)}
		}
	}
	if b.probes.Add(-1) >= 0 {
		return s, nil
	}
	b.probes.Add(1)
	return 0, &OpenError{Dependency: b.name, State: StateHalfOpen}
}

type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	outcomeNeutral
	// outcomeDeadline: the caller's own deadline ended the call. It is not
	// the dependency's failure, but the dependency did not answer in time:
	// with slow-call tracking it counts as a slow call once it lasted
	// SlowCall, so that a hung dependency still trips the breaker when
	// every caller sets a deadline shorter than the pipeline's timeouts.
	// Otherwise it is neutral.
	outcomeDeadline
)

var outcomeNames = [...]string{"success", "failure", "neutral", "deadline"}

// record counts the outcome of a call admitted with tok that took from
// start to end (breaker time; end is only read with slow-call tracking or a
// time window, see needsEnd).
func (b *Breaker) record(tok uint64, oc outcome, start, end int64) {
	if b.state.Load() != tok {
		return // admitted in an earlier period: its outcome no longer counts
	}
	slow := b.o.SlowCall > 0 && end-start >= int64(b.o.SlowCall)
	if oc == outcomeDeadline {
		oc = outcomeNeutral
		if slow {
			oc = outcomeSuccess // counted as a call, and slow
		}
	}
	fail := oc == outcomeFailure
	if State(tok&3) == StateHalfOpen {
		b.recordProbe(tok, oc, fail, slow)
		return
	}
	if oc == outcomeNeutral {
		return
	}
	g := b.gen(end)
	if n := b.win.add(g, 1, b2i(fail), b2i(slow)); n == b.perBucket {
		b.cur.CompareAndSwap(g, g+1) // count windows: the bucket is full, fill the next
	}
	if fail || slow {
		b.maybeTrip(tok, g)
	}
}

// needsEnd reports whether record reads its end argument.
func (b *Breaker) needsEnd() bool { return b.o.SlowCall > 0 || b.perBucket == 0 }

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

func (b *Breaker) recordProbe(tok uint64, oc outcome, fail, slow bool) {
	if oc == outcomeNeutral {
		b.probes.Add(1) // hand the permit to another call
		return
	}
	if fail {
		b.probeFail.Add(1)
	}
	if slow {
		b.probeSlow.Add(1)
	}
	if b.probeDone.Add(1) >= int64(b.o.HalfOpenProbes) {
		b.decide(tok)
	}
}

func (b *Breaker) tripping(calls, fails, slow int64) bool {
	if calls == 0 {
		return false
	}
	return float64(fails) >= b.o.FailureRate*float64(calls) ||
		(b.o.SlowCall > 0 && float64(slow) >= b.o.SlowCallRate*float64(calls))
}

func (b *Breaker) maybeTrip(tok uint64, g int64) {
	calls, fails, slow := b.win.sum(g)
	if calls < int64(b.o.MinCalls) || !b.tripping(calls, fails, slow) {
		return
	}
	b.transition(tok, StateOpen, StateChange{Calls: calls, Failures: fails, Slow: slow})
}

// decide closes or reopens a half-open breaker on its probes' results.
func (b *Breaker) decide(tok uint64) {
	c := StateChange{Calls: int64(b.o.HalfOpenProbes), Failures: b.probeFail.Load(), Slow: b.probeSlow.Load()}
	to := StateClosed
	if b.tripping(c.Calls, c.Failures, c.Slow) {
		to = StateOpen
	}
	b.transition(tok, to, c)
}

// toHalfOpen moves an open breaker (state word s) to half-open and returns
// the state word now in force.
func (b *Breaker) toHalfOpen(s uint64) uint64 {
	b.transition(s, StateHalfOpen, StateChange{})
	return b.state.Load()
}

// transition moves the breaker from the state word from to state to, unless
// another goroutine changed the state first.
func (b *Breaker) transition(from uint64, to State, c StateChange) {
	b.mu.Lock()
	if b.state.Load() != from {
		b.mu.Unlock()
		return
	}
	switch to {
	case StateOpen:
		b.openUntil.Store(b.clk.now() + int64(b.o.OpenFor))
	case StateHalfOpen:
		b.probes.Store(int64(b.o.HalfOpenProbes))
		b.probeDone.Store(0)
		b.probeFail.Store(0)
		b.probeSlow.Store(0)
	case StateClosed:
		b.win.reset()
	}
	b.state.Store((from>>2+1)<<2 | uint64(to))
	b.mu.Unlock()
	c.Dependency, c.From, c.To = b.name, State(from&3), to
	level := slog.LevelInfo
	if to == StateOpen {
		level = slog.LevelWarn
	}
	b.log.Log(context.Background(), level, "circuit breaker "+to.String(), "dependency", b.name, "from", c.From.String(),
		"calls", c.Calls, "failures", c.Failures, "slow", c.Slow)
	if f := b.o.Hooks.OnStateChange; f != nil {
		f(c)
	}
}

// Permit is a breaker's admission of one call made outside a pipeline (a
// stream, a hand-written integration). Report its outcome exactly once
// with Success, Failure or Neutral; a permit never reported holds a
// half-open probe.
type Permit struct {
	b     *Breaker
	tok   uint64
	start int64
}

// Allow admits a call, or returns an *OpenError (ErrOpen).
func (b *Breaker) Allow() (Permit, error) {
	tok, err := b.acquire()
	if err != nil {
		return Permit{}, err
	}
	var start int64
	if b.needsEnd() {
		start = b.clk.now()
	}
	return Permit{b: b, tok: tok, start: start}, nil
}

// Success reports that the call succeeded (slow if it took SlowCall or longer).
func (p Permit) Success() { p.done(outcomeSuccess) }

// Failure reports that the call failed.
func (p Permit) Failure() { p.done(outcomeFailure) }

// Neutral reports an outcome that says nothing about the dependency (the
// caller cancelled, a business error).
func (p Permit) Neutral() { p.done(outcomeNeutral) }

func (p Permit) done(oc outcome) {
	if p.b == nil {
		return
	}
	end := p.start
	if p.b.needsEnd() {
		end = p.b.clk.now()
	}
	p.b.record(p.tok, oc, p.start, end)
}
