package resilience

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The steps of a call. Each runs stage i and calls p.run for stage i+1;
// none allocates on the happy path.

func (p *Pipeline[T]) runRetry(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	s := &p.stages[i]
	r := &s.retry
	if r.Budget != nil {
		r.Budget.deposit(now + s.off)
	}
	for attempt := 1; ; attempt++ {
		v, err := p.run(ctx, i+1, now, fn, efn)
		if err == nil {
			return v, nil
		}
		if reason := p.noRetry(ctx, r, attempt, err); reason != "" {
			p.giveUp(ctx, attempt, reason, err)
			return v, err
		}
		delay, reason := r.backoff(attempt, err)
		if reason == "" {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
				reason = "the deadline would pass before the next attempt"
			}
		}
		if reason != "" {
			p.giveUp(ctx, attempt, reason, err)
			return v, err
		}
		if r.Budget != nil && !r.Budget.withdraw(p.clk.now()+s.off) {
			berr := &BudgetError{Dependency: p.dependency(ctx), Attempts: attempt, Last: err}
			p.reject(ctx, "budget", berr)
			p.log.Warn("retry budget exhausted", "dependency", berr.Dependency, "attempts", attempt, "err", err)
			return v, berr
		}
		if f := p.hooks.OnRetry; f != nil {
			f(ctx, RetryEvent{Dependency: p.dependency(ctx), Attempt: attempt, Delay: delay, Err: err})
		}
		p.log.Debug("retrying", "dependency", p.dependency(ctx), "attempt", attempt, "delay", delay, "err", err)
		if werr := sleep(ctx, delay); werr != nil {
			return v, werr
		}
		now = p.clk.now()
	}
}

// noRetry returns why err must not be retried, or "".
func (p *Pipeline[T]) noRetry(ctx context.Context, r *Retry, attempt int, err error) string {
	switch {
	case attempt >= r.MaxAttempts:
		return "attempts exhausted"
	case ctx.Err() != nil:
		return "the caller's context ended"
	case isRejection(err):
		return "rejected by a policy"
	case p.isNeutral(err):
		return "neutral error"
	case IsPermanent(err):
		return "permanent error"
	case r.If != nil && !r.If(err):
		return "not retryable"
	}
	return ""
}

func (p *Pipeline[T]) giveUp(ctx context.Context, attempt int, reason string, err error) {
	if f := p.hooks.OnGiveUp; f != nil {
		f(ctx, RetryEvent{Dependency: p.dependency(ctx), Attempt: attempt, Reason: reason, Err: err})
	}
}

func (p *Pipeline[T]) runTimeout(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	s := &p.stages[i]
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return p.run(ctx, i+1, now, fn, efn) // the caller's deadline comes first
	}
	tctx, cancel := context.WithTimeoutCause(ctx, s.timeout, s.terr)
	v, err := p.run(tctx, i+1, now, fn, efn)
	if err == nil && p.keep != nil {
		return p.keep(v, cancel), nil
	}
	cancel()
	if err != nil && ctx.Err() == nil && context.Cause(tctx) == s.terr {
		terr := s.terr
		if dep := DependencyFrom(ctx); dep != "" && dep != terr.Dependency {
			terr = &TimeoutError{Dependency: dep, Scope: terr.Scope, Timeout: terr.Timeout}
		}
		if f := p.hooks.OnTimeout; f != nil {
			f(ctx, *terr)
		}
		return v, terr
	}
	return v, err
}

func (p *Pipeline[T]) waited(ctx context.Context, policy string, d time.Duration) {
	if f := p.hooks.OnWait; f != nil {
		f(ctx, WaitEvent{Dependency: p.dependency(ctx), Policy: policy, Waited: d})
	}
}

// outcomeOf classifies a call's result for breakers and limiters: the
// caller's cancellation, declared business errors and rejections are
// neutral; the expiry of one of the pipeline's own timeouts is a failure.
func (p *Pipeline[T]) outcomeOf(ctx context.Context, err error) outcome {
	switch {
	case err == nil:
		return outcomeSuccess
	case p.isNeutral(err) || isRejection(err):
		return outcomeNeutral
	case ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrTimeout):
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return outcomeDeadline
		}
		return outcomeNeutral
	}
	return outcomeFailure
}

func (p *Pipeline[T]) runBreaker(ctx context.Context, i int, now int64, b *Breaker, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	off := p.stages[i].off
	tok, err := b.acquire()
	if err != nil {
		p.reject(ctx, "breaker", err)
		var zero T
		return zero, err
	}
	done := false
	defer func() {
		if !done { // fn panicked: a failure, and a half-open probe's permit must not be lost
			b.record(tok, outcomeFailure, now+off, p.clk.now()+off)
		}
	}()
	v, err := p.run(ctx, i+1, now, fn, efn)
	done = true
	end := now
	if b.needsEnd() || p.hooks.OnOutcome != nil {
		end = p.clk.now()
	}
	oc := p.outcomeOf(ctx, err)
	b.record(tok, oc, now+off, end+off)
	if f := p.hooks.OnOutcome; f != nil {
		f(ctx, OutcomeEvent{Dependency: b.name, Outcome: outcomeNames[oc], Latency: time.Duration(end - now), Err: err})
	}
	return v, err
}

func (p *Pipeline[T]) runBulkhead(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	b := p.stages[i].bulkhead
	waited, err := b.acquire(ctx)
	if err != nil {
		if isRejection(err) {
			p.reject(ctx, "bulkhead", err)
		}
		var zero T
		return zero, err
	}
	defer b.release()
	if waited > 0 {
		now = p.clk.now()
		p.waited(ctx, "bulkhead", waited)
	}
	return p.run(ctx, i+1, now, fn, efn)
}

func (p *Pipeline[T]) runRateLimit(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	s := &p.stages[i]
	wait, reserved, err := s.limiter.take(now + s.off)
	if err == nil && wait > 0 {
		if err = sleep(ctx, wait); err == nil {
			now = p.clk.now()
			p.waited(ctx, "ratelimit", wait)
		} else {
			s.limiter.refund(reserved)
		}
	}
	if err != nil {
		if isRejection(err) {
			p.reject(ctx, "ratelimit", err)
		}
		var zero T
		return zero, err
	}
	return p.run(ctx, i+1, now, fn, efn)
}

func (p *Pipeline[T]) runAdaptive(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	a := p.stages[i].adaptive
	inflight, err := a.acquire()
	if err != nil {
		p.reject(ctx, "adaptive", err)
		var zero T
		return zero, err
	}
	done := false
	defer func() {
		if !done { // fn panicked: give the slot back
			a.release(inflight, 0, false, false)
		}
	}()
	v, err := p.run(ctx, i+1, now, fn, efn)
	done = true
	rtt := time.Duration(p.clk.now() - now)
	oc := p.outcomeOf(ctx, err)
	congested := oc == outcomeFailure && errors.Is(err, context.DeadlineExceeded)
	a.release(inflight, rtt, oc == outcomeSuccess, congested)
	return v, err
}

type result[T any] struct {
	v   T
	err error
	n   int // attempt index
	// panicked: the attempt panicked with pv (nil for runtime.Goexit).
	panicked bool
	pv       any
}

// runHedge runs stage i+1 onwards in goroutines, starting another attempt
// whenever Delay passes without an answer; it returns the first definite
// answer, after cancelling the other attempts and waiting for them (a
// loser's successful result is handed to p.drop, so that an HTTP body is
// closed). A panic in an attempt is re-panicked, with its value, on the
// caller's goroutine once every attempt has returned, whatever the other
// attempts answered: as without hedging, a panic reaches the caller.
func (p *Pipeline[T]) runHedge(ctx context.Context, i int, now int64, fn func(context.Context) (T, error), efn func(context.Context) error) (T, error) {
	s := &p.stages[i]
	h := &s.hedge
	if s.deposit {
		h.Budget.deposit(now + s.off)
	}
	if !hedgingAllowed(ctx) {
		return p.run(ctx, i+1, now, fn, efn)
	}
	var wg sync.WaitGroup
	cancels := make([]context.CancelFunc, 0, h.MaxHedges+1)
	results := make(chan result[T], h.MaxHedges+1)
	start := func() {
		actx, cancel := context.WithCancel(ctx)
		n := len(cancels)
		cancels = append(cancels, cancel)
		wg.Go(func() {
			done := false
			defer func() {
				if !done {
					results <- result[T]{n: n, panicked: true, pv: recover()}
				}
			}()
			v, err := p.run(actx, i+1, p.clk.now(), fn, efn)
			done = true
			results <- result[T]{v: v, err: err, n: n}
		})
	}
	finish := func(r result[T]) (T, error) {
		for n, cancel := range cancels {
			if n != r.n || r.err != nil || r.panicked || p.keep == nil {
				cancel()
			}
		}
		wg.Wait()
		close(results)
		for l := range results { // the losers
			if l.panicked && !r.panicked {
				p.dropResult(r)
				r = l
			} else if !l.panicked && l.err == nil {
				p.dropResult(l)
			}
		}
		if r.panicked {
			for _, cancel := range cancels {
				cancel()
			}
			if r.pv == nil {
				panic("resilience: a hedged attempt called runtime.Goexit")
			}
			panic(r.pv)
		}
		if r.err == nil && p.keep != nil {
			return p.keep(r.v, cancels[r.n]), nil
		}
		return r.v, r.err
	}
	start()
	timer := time.NewTimer(h.Delay)
	defer timer.Stop()
	started, pending := 1, 1
	for {
		select {
		case r := <-results:
			pending--
			if r.panicked || r.err == nil || !p.retryableInHedge(ctx, r.err) || pending == 0 {
				return finish(r) // on a failure of the last attempt the retry policy decides what comes next
			}
		case <-timer.C:
			if started <= h.MaxHedges && p.hedgeBudget(ctx, s) {
				started++
				pending++
				if f := p.hooks.OnHedge; f != nil {
					f(ctx, HedgeEvent{Dependency: p.dependency(ctx), Attempt: started})
				}
				start()
				timer.Reset(h.Delay)
			}
		}
	}
}

// dropResult discards a successful result nobody will receive.
func (p *Pipeline[T]) dropResult(r result[T]) {
	if r.err == nil && !r.panicked && p.drop != nil {
		p.drop(r.v)
	}
}

// hedgeBudget takes an extra attempt from the hedge's budget, if any.
func (p *Pipeline[T]) hedgeBudget(ctx context.Context, s *stage) bool {
	if s.hedge.Budget == nil || s.hedge.Budget.withdraw(p.clk.now()+s.off) {
		return true
	}
	p.reject(ctx, "budget", &RejectedError{Dependency: p.dependency(ctx), Policy: "hedge", Reason: ErrBudgetExhausted})
	return false
}

// retryableInHedge reports whether an attempt's error should wait for the
// other attempts rather than be returned at once.
func (p *Pipeline[T]) retryableInHedge(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !p.isNeutral(err) && !IsPermanent(err)
}
