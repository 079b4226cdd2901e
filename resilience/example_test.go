package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

var errNotFound = errors.New("not found")

func Example() {
	budget, _ := resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, MinPerSecond: 5})
	breaker, _ := resilience.NewBreaker("prices", resilience.BreakerOptions{SlowCall: time.Second})
	bulkhead, _ := resilience.NewBulkhead("prices", resilience.BulkheadOptions{MaxConcurrent: 32, MaxQueue: 64})
	p, err := resilience.New[int](resilience.Options{
		Name:    "prices",
		Neutral: func(err error) bool { return errors.Is(err, errNotFound) }, // a business answer
	},
		resilience.Timeout(3*time.Second), // total
		resilience.Retry{MaxAttempts: 3, BaseDelay: 50 * time.Millisecond, Budget: budget},
		bulkhead,
		breaker,
		resilience.Timeout(800*time.Millisecond), // per attempt
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p)

	attempts := 0
	price, err := p.Do(context.Background(), func(ctx context.Context) (int, error) {
		if attempts++; attempts == 1 {
			return 0, errors.New("connection reset") // retried
		}
		return 42, nil
	})
	fmt.Println(price, err, attempts)
	// Output:
	// timeout(total 3s) → retry(3 attempts, 50ms..10s, budget 10%+5/s) → bulkhead("prices" 32+64 queued) → breaker("prices") → timeout(attempt 800ms)
	// 42 <nil> 2
}

func ExampleNew_invalidOrder() {
	breaker, _ := resilience.NewBreaker("prices", resilience.BreakerOptions{})
	_, err := resilience.New[int](resilience.Options{}, breaker, resilience.Retry{})
	fmt.Println(errors.Is(err, resilience.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// resilience: invalid pipeline order: in breaker("prices") → retry(3 attempts, 100ms..10s), retry is inside breaker("prices"); move retry before breaker("prices"): the retry must be outside the hedge, admission policies and breaker so that every attempt is limited and counted, a waiting retry holds no slot, and an open breaker fails fast instead of being retried
}

func ExampleNewTransport() {
	budget, _ := resilience.NewBudget(resilience.BudgetOptions{})
	breakers, _ := resilience.NewBreakers(100, resilience.BreakerOptions{}) // one per host
	tr, err := resilience.NewTransport(http.DefaultTransport, resilience.TransportOptions{IdempotencyKeys: true},
		resilience.Retry{Budget: budget}, breakers, resilience.Timeout(2*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: tr}
	_ = client // client.Get(…) now retries, breaks per host and times out each attempt
	fmt.Println(tr)
	// Output:
	// retry(3 attempts, 100ms..10s, budget 10%+5/s) → breakers(per dependency, max 100) → timeout(attempt 2s)
}
