// Package resilience makes calls between services survive the failures of
// the services they call: composable policies — circuit breakers, retries
// with a shared budget, timeouts, bulkheads, rate limiters, an adaptive
// concurrency limiter, hedging and fallbacks — run in an explicit order
// that New validates and String prints. It imports only the standard
// library; connectresilience adapts it to Connect and gRPC clients.
//
//	budget, _ := resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, MinPerSecond: 5})
//	breaker, _ := resilience.NewBreaker("payments", resilience.BreakerOptions{SlowCall: time.Second})
//	bulkhead, _ := resilience.NewBulkhead("payments", resilience.BulkheadOptions{MaxConcurrent: 32, MaxQueue: 64})
//	p, err := resilience.New[*Receipt](resilience.Options{Name: "payments"},
//		resilience.Timeout(3*time.Second),                     // total
//		resilience.Retry{MaxAttempts: 3, Budget: budget},
//		bulkhead,
//		breaker,
//		resilience.Timeout(800*time.Millisecond),              // per attempt
//	)
//	fmt.Println(p) // timeout(total 3s) → retry(3 attempts, …) → bulkhead("payments" 32+64 queued) → breaker("payments") → timeout(attempt 800ms)
//	receipt, err := p.Do(ctx, client.Charge) // client.Charge: func(context.Context) (*Receipt, error)
//
// The order rules and their reasons are documented on Pipeline. Every
// refusal is an error matching a sentinel (ErrOpen, ErrBulkheadFull,
// ErrRateLimited, ErrConcurrencyLimited, ErrBudgetExhausted, ErrTimeout)
// with a detail struct naming the dependency. Hooks report every state
// change and decision; the telemetry package turns them into metrics.
//
// Transport wraps an http.RoundTripper: it classifies 5xx, 429 and
// connection errors as failures, honours Retry-After, retries only
// idempotent requests (or those with an Idempotency-Key, which it can
// generate), and rewinds request bodies with GetBody.
package resilience
