package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Options configure a Pipeline. The zero value works.
type Options struct {
	// Name is the dependency the pipeline calls: it names it in errors and
	// hooks, and keys a Breakers registry when the context names none.
	Name string
	// Neutral declares business errors (not found, invalid argument…):
	// they are returned as they are, count as neither success nor failure
	// in breakers, are not retried and get no fallback.
	Neutral func(error) bool
	// Hooks receive the pipeline's decisions (retries and give-ups,
	// rejections, timeouts, hedges, fallbacks). State changes of breakers
	// and adaptive limits are reported by the hooks in BreakerOptions and
	// AdaptiveOptions, since those policies may serve several pipelines.
	Hooks Hooks
	// Logger receives a debug record per retry and a warning per
	// exhausted budget (nil: discard).
	Logger *slog.Logger
}

// Pipeline runs calls through policies in a fixed order, outermost first.
// Build one with New and share it: it is safe for concurrent use. On the
// happy path a call through a breaker, retry (with budget), bulkhead and
// rate limiter allocates nothing (see BENCHMARKS.md); timeouts allocate a
// context, hedges a goroutine per attempt.
//
// The order rules, outermost first (New rejects any other order, saying
// what to move):
//
//	Fallback → Timeout (total) → Retry → Hedge → admission (RateLimiter,
//	Bulkhead, AdaptiveLimiter, in any order) → Breaker
//
// and a Timeout after the Retry (or Hedge), anywhere, bounds each attempt.
// Why: the fallback sees every failure; the total timeout bounds the
// retries and their waits; each attempt (and each hedged attempt) passes
// admission and the breaker on its own, so that attempts are limited and
// counted (one outcome per attempt) and an open breaker fails fast instead
// of being retried; a call waiting out a backoff holds no bulkhead slot; a
// rejection by admission never uses up a half-open breaker's probes nor
// counts as a failure of the dependency. Each kind of policy may appear
// once (Timeout once on each side of the first Retry or Hedge).
//
// Outcomes, for breakers and the adaptive limiter: nil is a success; the
// expiry of one of the pipeline's timeouts, and any other error, is a
// failure; errors declared Neutral, rejections by other policies, and
// errors after the caller's own context ended are neutral (not counted).
type Pipeline[T any] struct {
	name     string
	stages   []stage
	fallback Fallback[T]
	neutral  func(error) bool
	hooks    Hooks
	log      *slog.Logger
	clk      clock
	desc     string
	// keep, when set, takes over the cancellation of a successful
	// attempt's context, for results that outlive the call (an HTTP
	// response body is read after RoundTrip returns).
	keep func(T, context.CancelFunc) T
	// drop, when set, releases a successful result that is discarded (a
	// hedged attempt that lost the race): an HTTP response body is closed.
	drop func(T)
	// clocked: some stage reads the time on every call (a budget, a rate
	// or adaptive limiter, a breaker timing calls), so the call reads it
	// once up front for all of them.
	clocked bool
}

type stage struct {
	kind     kind
	off      int64 // pipeline time + off = the policy's time (of its budget, for retries and hedges)
	deposit  bool  // of a hedge: count calls in its budget (no retry does)
	timeout  time.Duration
	scope    string        // of a timeout: "total" or "attempt"
	terr     *TimeoutError // of a timeout: its error, also its context's cause
	retry    Retry
	hedge    Hedge
	breaker  *Breaker
	breakers *Breakers
	bulkhead *Bulkhead
	limiter  *RateLimiter
	adaptive *AdaptiveLimiter
}

// New builds a pipeline from policies, outermost first, or returns a
// *ConfigError (matching ErrInvalidConfig) saying what to change.
func New[T any](o Options, policies ...Policy) (*Pipeline[T], error) {
	p := &Pipeline[T]{name: o.Name, neutral: o.Neutral, hooks: o.Hooks, log: o.Logger, clk: newClock()}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	retryAt := -1 // the first Retry or Hedge: timeouts inside it bound each attempt
	for i, pol := range policies {
		if pol == nil {
			return nil, configErr("pipeline", fmt.Sprintf("policy %d is nil", i+1), "remove it or build it with its constructor")
		}
		if k := pol.kind(); (k == kindRetry || k == kindHedge) && retryAt < 0 {
			retryAt = i
		}
	}
	names := make([]string, len(policies))
	short := make([]string, len(policies))
	for i, pol := range policies {
		s, err := p.stageFor(pol, retryAt >= 0 && i > retryAt)
		if err != nil {
			return nil, err
		}
		p.stages = append(p.stages, s)
		names[i] = describe(pol, s)
		short[i] = shortName(s)
	}
	p.desc = strings.Join(names, " → ")
	if len(names) == 0 {
		p.desc = "(no policies)"
	}
	if err := validateOrder(p.stages, short, p.desc); err != nil {
		return nil, err
	}
	for i := range p.stages {
		s := &p.stages[i]
		if s.kind == kindHedge && s.hedge.Budget != nil {
			s.deposit = !slices.ContainsFunc(p.stages, func(r stage) bool { return r.kind == kindRetry && r.retry.Budget == s.hedge.Budget })
		}
		p.clocked = p.clocked || s.clocked() || (s.kind == kindBreaker && o.Hooks.OnOutcome != nil)
	}
	if len(p.stages) > 0 && p.stages[0].kind == kindFallback {
		p.stages = p.stages[1:] // run as the outermost step of every call
	}
	return p, nil
}

func (p *Pipeline[T]) stageFor(pol Policy, afterRetry bool) (stage, error) {
	s := stage{kind: pol.kind()}
	var err error
	switch v := pol.(type) {
	case *Breaker:
		s.breaker, s.off = v, p.clk.offset(v.clk)
	case *Breakers:
		s.breakers, s.off = v, p.clk.offset(v.clk)
	case *Bulkhead:
		s.bulkhead = v
	case *RateLimiter:
		s.limiter, s.off = v, p.clk.offset(v.clk)
	case *AdaptiveLimiter:
		s.adaptive = v
	case Retry:
		s.retry = v
		err = s.retry.normalize()
		if err == nil && v.Budget != nil {
			s.off = p.clk.offset(v.Budget.clk)
		}
	case Hedge:
		s.hedge = v
		err = s.hedge.normalize()
		if err == nil && v.Budget != nil {
			s.off = p.clk.offset(v.Budget.clk)
		}
	case Timeout:
		s.timeout, s.scope = time.Duration(v), "total"
		if afterRetry {
			s.scope = "attempt"
		}
		s.terr = &TimeoutError{Dependency: p.name, Scope: s.scope, Timeout: s.timeout}
		if v <= 0 {
			err = configErr("timeout", fmt.Sprintf("%v is not positive", time.Duration(v)), "use a positive duration, or leave the timeout out")
		}
	case Fallback[T]:
		if v.Func == nil {
			err = configErr("fallback", "Func is nil", "set Func to the function that replaces a failure")
		}
		p.fallback = v
	default:
		var zero T
		err = configErr("pipeline", fmt.Sprintf("policy %T does not fit a pipeline of %T", pol, zero),
			"build the Fallback with the pipeline's result type")
	}
	return s, err
}

func describe(pol Policy, s stage) string {
	if s.kind == kindTimeout {
		return fmt.Sprintf("timeout(%s %v)", s.scope, s.timeout)
	}
	switch s.kind {
	case kindRetry:
		return s.retry.String()
	case kindHedge:
		return s.hedge.String()
	}
	return fmt.Sprint(pol)
}

// clocked reports whether the stage reads the time on every call.
func (s *stage) clocked() bool {
	switch s.kind {
	case kindRetry:
		return s.retry.Budget != nil
	case kindHedge:
		return s.deposit
	case kindRateLimit, kindAdaptive:
		return true
	case kindBreaker:
		return s.breakers != nil || s.breaker.needsEnd()
	}
	return false
}

// shortName names a stage in order errors.
func shortName(s stage) string {
	switch s.kind {
	case kindTimeout:
		return fmt.Sprintf("timeout(%s %v)", s.scope, s.timeout)
	case kindBreaker:
		if s.breaker != nil {
			return s.breaker.String()
		}
		return "breakers"
	case kindBulkhead:
		return fmt.Sprintf("bulkhead(%q)", s.bulkhead.name)
	case kindRateLimit:
		return fmt.Sprintf("ratelimit(%q)", s.limiter.name)
	case kindAdaptive:
		return fmt.Sprintf("adaptive(%q)", s.adaptive.name)
	}
	return [...]string{kindFallback: "fallback", kindRetry: "retry", kindHedge: "hedge"}[s.kind]
}

// rank orders the kinds of policy, outermost first; an attempt timeout
// may go anywhere inside the retry.
func rank(s stage) int {
	switch s.kind {
	case kindFallback:
		return 0
	case kindTimeout:
		return 1
	case kindRetry:
		return 2
	case kindHedge:
		return 3
	case kindRateLimit, kindBulkhead, kindAdaptive:
		return 4
	}
	return 5 // breaker
}

var orderReasons = map[int]string{
	0: "the fallback must be outermost so that it sees every failure, including an open breaker and a full bulkhead",
	1: "a total timeout must be outside the retry so that it bounds all attempts and their waits",
	2: "the retry must be outside the hedge, admission policies and breaker so that every attempt is limited and counted, a waiting retry holds no slot, and an open breaker fails fast instead of being retried",
	3: "every hedged attempt must pass the admission policies and the breaker on its own",
	4: "a rejection by a rate limiter, bulkhead or adaptive limiter must not use up a half-open breaker's probes nor count as a failure of the dependency",
}

func validateOrder(stages []stage, names []string, desc string) error {
	seen := map[string]int{}
	for i, s := range stages {
		key := fmt.Sprint(s.kind)
		if s.kind == kindTimeout {
			key += s.scope
		}
		if j, ok := seen[key]; ok {
			return configErr("pipeline order", fmt.Sprintf("%s has %s and %s", desc, names[j], names[i]), "keep one of them")
		}
		seen[key] = i
		if s.kind == kindTimeout && s.scope == "attempt" {
			continue
		}
		for j := range i {
			if stages[j].kind == kindTimeout && stages[j].scope == "attempt" {
				continue
			}
			if rank(stages[j]) > rank(s) {
				return configErr("pipeline order", fmt.Sprintf("in %s, %s is inside %s", desc, names[i], names[j]),
					fmt.Sprintf("move %s before %s: %s", names[i], names[j], orderReasons[rank(s)]))
			}
		}
	}
	var total, attempt time.Duration
	for _, s := range stages {
		if s.kind == kindTimeout && s.scope == "total" {
			total = s.timeout
		} else if s.kind == kindTimeout {
			attempt = s.timeout
		}
	}
	if total > 0 && attempt >= total {
		return configErr("pipeline timeouts", fmt.Sprintf("the attempt timeout %v is not shorter than the total %v, so a retry could never run", attempt, total),
			"shorten the attempt timeout or drop it")
	}
	return nil
}

// String prints the policies in order, outermost first, e.g.
// "fallback → timeout(total 2s) → retry(3 attempts, …) → breaker("db")".
func (p *Pipeline[T]) String() string { return p.desc }

// Breaker returns the breaker the pipeline uses for dependency (from its
// Breakers registry, or its one Breaker whatever the name), or nil when it
// has none; for calls the pipeline cannot run, such as streams (see
// Breaker.Allow).
func (p *Pipeline[T]) Breaker(dependency string) *Breaker {
	for _, s := range p.stages {
		switch {
		case s.breaker != nil:
			return s.breaker
		case s.breakers != nil:
			if dependency == "" {
				dependency = p.name
			}
			return s.breakers.Get(dependency)
		}
	}
	return nil
}

// Name returns Options.Name.
func (p *Pipeline[T]) Name() string { return p.name }

// Do calls fn through the policies and returns its result or the error of
// the policy that stopped it. fn may be called several times (retries,
// hedges), concurrently with hedging, and must honour ctx. Passing a
// function value that is allocated once (a top-level function or a method
// value kept in a variable) keeps the call free of allocations.
func (p *Pipeline[T]) Do(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return p.exec(ctx, fn, nil)
}

// DoErr is Do for calls that return only an error (build the pipeline as
// New[struct{}] when it serves only such calls). It allocates no adapter.
func (p *Pipeline[T]) DoErr(ctx context.Context, fn func(context.Context) error) error {
	_, err := p.exec(ctx, nil, fn)
	return err
}

func (p *Pipeline[T]) exec(ctx context.Context, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	var now int64
	if p.clocked {
		now = p.clk.now()
	}
	v, err := p.run(ctx, 0, now, fn, efn)
	if err == nil || p.fallback.Func == nil || !p.fallbackApplies(ctx, err) {
		return v, err
	}
	if f := p.hooks.OnFallback; f != nil {
		f(ctx, FallbackEvent{Dependency: p.dependency(ctx), Err: err})
	}
	return p.fallback.Func(ctx, err)
}

func (p *Pipeline[T]) fallbackApplies(ctx context.Context, err error) bool {
	if p.fallback.If != nil {
		return p.fallback.If(err)
	}
	return !p.isNeutral(err) && ctx.Err() == nil
}

func (p *Pipeline[T]) isNeutral(err error) bool { return p.neutral != nil && p.neutral(err) }

// run executes stage i and everything inside it; now is pipeline time.
func (p *Pipeline[T]) run(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	if i == len(p.stages) {
		if efn != nil {
			var zero T
			return zero, efn(ctx)
		}
		return fn(ctx)
	}
	switch s := &p.stages[i]; s.kind {
	case kindRetry:
		return p.runRetry(ctx, i, now, fn, efn)
	case kindTimeout:
		return p.runTimeout(ctx, i, now, fn, efn)
	case kindBreaker:
		b := s.breaker
		if b == nil {
			b = s.breakers.Get(p.dependency(ctx))
		}
		return p.runBreaker(ctx, i, now, b, fn, efn)
	case kindBulkhead:
		return p.runBulkhead(ctx, i, now, fn, efn)
	case kindRateLimit:
		return p.runRateLimit(ctx, i, now, fn, efn)
	case kindAdaptive:
		return p.runAdaptive(ctx, i, now, fn, efn)
	default:
		return p.runHedge(ctx, i, now, fn, efn)
	}
}

func (p *Pipeline[T]) reject(ctx context.Context, policy string, err error) {
	if f := p.hooks.OnReject; f != nil {
		f(ctx, Rejection{Dependency: p.dependency(ctx), Policy: policy, Err: err})
	}
}

// dependency names the dependency of a call: the context's (see
// WithDependency), else the pipeline's name.
func (p *Pipeline[T]) dependency(ctx context.Context) string {
	if dep := DependencyFrom(ctx); dep != "" {
		return dep
	}
	return p.name
}
