package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
)

// PubSubConfig selects pubsub scenarios and sizes. The zero value runs
// every scenario with its defaults.
type PubSubConfig struct {
	// Scenarios to run, in this order; empty runs all (PubSubScenarios).
	Scenarios []string
	// Messages per scenario; 0 takes each scenario's default.
	Messages int
	// Size is each message's data in bytes; 0 is 256.
	Size int
	// Rate is e2e-rate's publish rate in messages per second; 0 is 1,000.
	Rate int
	// Publishers is how many goroutines publish in publish and e2e-max; 0
	// is 16.
	Publishers int
	// OnResult, if set, is called as each scenario finishes.
	OnResult func(Result)
}

// PubSubDestination is a fresh destination for one scenario: a topic and
// one durable subscription on it that keeps every message sent from now
// on. Close closes both and removes the destination.
type PubSubDestination struct {
	Topic        driver.Topic
	Subscription driver.Subscription
	Close        func() error
}

// OpenPubSub creates a destination for the named scenario.
type OpenPubSub func(ctx context.Context, scenario string) (*PubSubDestination, error)

type pubsubScenario struct {
	name, op string
	messages int
	run      func(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error)
}

type pubsubParams struct {
	messages, size, rate, publishers int
}

var pubsubScenarios = []pubsubScenario{
	{"publish", "a Publish of one message, awaiting the broker's ack (pubsub.Topic batches concurrent ones)", 20_000, benchPublish},
	{"e2e-rate", "publish→handled latency at a fixed rate, from each message's scheduled send time", 5_000, benchE2ERate},
	{"e2e-max", "publish→handled latency with publishers at full speed", 20_000, benchE2EMax},
}

// PubSubScenarios returns the names of the pubsub scenarios, in order.
func PubSubScenarios() []string {
	names := make([]string, len(pubsubScenarios))
	for i, s := range pubsubScenarios {
		names[i] = s.name
	}
	return names
}

// PubSub runs the selected scenarios, each on a fresh destination, and
// returns their results. It stops at the first error.
func PubSub(ctx context.Context, open OpenPubSub, cfg PubSubConfig) ([]Result, error) {
	var selected []pubsubScenario
	for _, name := range cfg.Scenarios {
		i := indexOf(pubsubScenarios, name)
		if i < 0 {
			return nil, fmt.Errorf("unknown pubsub scenario %q (known: %v)", name, PubSubScenarios())
		}
		selected = append(selected, pubsubScenarios[i])
	}
	if len(selected) == 0 {
		selected = pubsubScenarios
	}
	if cfg.Messages < 0 || cfg.Size < 0 || cfg.Rate < 0 || cfg.Publishers < 0 {
		return nil, errors.New("messages, size, rate and publishers must not be negative")
	}
	var results []Result
	for _, sc := range selected {
		p := pubsubParams{messages: orInt(cfg.Messages, sc.messages), size: orInt(cfg.Size, 256),
			rate: orInt(cfg.Rate, 1000), publishers: orInt(cfg.Publishers, 16)}
		r, err := runPubSub(ctx, open, sc, p)
		if err != nil {
			return results, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		if cfg.OnResult != nil {
			cfg.OnResult(r)
		}
		results = append(results, r)
	}
	return results, nil
}

func runPubSub(ctx context.Context, open OpenPubSub, sc pubsubScenario, p pubsubParams) (r Result, err error) {
	d, err := open(ctx, sc.name)
	if err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	r, err = sc.run(ctx, d, p)
	if err == nil {
		err = ctx.Err()
	}
	r.Scenario, r.Op = sc.name, sc.op
	if sc.name == "e2e-rate" {
		r.Op = fmt.Sprintf("%s (%d msg/s)", sc.op, p.rate)
	}
	return r, err
}

func indexOf(scs []pubsubScenario, name string) int {
	for i, s := range scs {
		if s.name == name {
			return i
		}
	}
	return -1
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// benchMessage is message i of a run: its id is i, so a handler finds
// when it was sent. Its key is one of 64.
func benchMessage(i int, data []byte) *pubsub.Message {
	return &pubsub.Message{ID: strconv.Itoa(i), Source: "/fjord/bench", Type: "fjord.bench",
		Key: "k" + strconv.Itoa(i%64), Data: data}
}

// benchPublish publishes p.messages through a pubsub.Topic from
// p.publishers goroutines, one message per Publish, timing each Publish.
func benchPublish(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	topic := pubsub.NewTopic(d.Topic, nil)
	lat := make(latencies, p.messages)
	start := time.Now()
	err := publishAll(ctx, topic, p, func(i int, at time.Duration) {}, func(i int, took time.Duration) { lat[i] = took })
	elapsed := time.Since(start)
	r := Result{Events: p.messages, Writers: p.publishers}
	lat.summarize(&r, elapsed)
	return r, errors.Join(err, topic.Close())
}

// publishAll publishes messages 0..p.messages-1 from p.publishers
// goroutines, message i by publisher i mod p.publishers in order; it
// calls sending with each message's index and time since the start before
// its Publish, and done with the Publish's duration after.
func publishAll(ctx context.Context, topic *pubsub.Topic, p pubsubParams, sending, done func(i int, d time.Duration)) error {
	data := payload(p.size)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, p.publishers)
	for w := range p.publishers {
		wg.Go(func() {
			for i := w; i < p.messages && ctx.Err() == nil; i += p.publishers {
				t0 := time.Now()
				sending(i, t0.Sub(start))
				if err := topic.Publish(ctx, benchMessage(i, data)); err != nil {
					errs[w] = err
					return
				}
				done(i, time.Since(t0))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// handleAll runs a pubsub.Router on sub until n distinct messages of this
// run have been handled, calling got with each one's index and the time it
// reached its handler; the Router acknowledges them as it does.
func handleAll(ctx context.Context, sub driver.Subscription, n int, got func(i int, at time.Time)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "bench", Concurrency: 16, MaxInFlight: 4096})
	var mu sync.Mutex
	seen := make([]bool, n)
	count := 0
	r.Handle("fjord.bench", func(_ context.Context, m *pubsub.Message) error {
		at := time.Now()
		i, err := strconv.Atoi(m.ID)
		if err != nil || i < 0 || i >= n {
			cancel(fmt.Errorf("received a message with id %q, not one of this run", m.ID))
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[i] {
			seen[i] = true
			count++
			got(i, at)
			if count == n {
				cancel(errDone)
			}
		}
		return nil
	})
	err := r.Run(ctx)
	if cause := context.Cause(ctx); cause == errDone {
		return nil
	} else if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return fmt.Errorf("after %d of %d messages: %w", count, n, err)
}

var errDone = errors.New("every message handled")

// benchE2ERate publishes at p.rate messages per second from one goroutine
// and times each message from its scheduled send time to its handler, so
// that a stall delays the clock of every message behind it (no
// coordinated omission).
func benchE2ERate(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	interval := time.Second / time.Duration(p.rate)
	return endToEnd(ctx, d, p, func(ctx context.Context, topic *pubsub.Topic, start time.Time, scheduled []atomic.Int64) error {
		data := payload(p.size)
		for i := 0; i < p.messages && ctx.Err() == nil; i++ {
			at := time.Duration(i) * interval
			scheduled[i].Store(int64(at))
			if wait := time.Until(start.Add(at)); wait > 0 {
				time.Sleep(wait) // pacing the publisher, not waiting for a result
			}
			if err := topic.Publish(ctx, benchMessage(i, data)); err != nil {
				return err
			}
		}
		return nil
	})
}

// benchE2EMax publishes from p.publishers goroutines as fast as the broker
// acknowledges and times each message from the start of its Publish to its
// handler.
func benchE2EMax(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	r, err := endToEnd(ctx, d, p, func(ctx context.Context, topic *pubsub.Topic, start time.Time, scheduled []atomic.Int64) error {
		sinceStart := time.Since(start)
		return publishAll(ctx, topic, p, func(i int, at time.Duration) { scheduled[i].Store(int64(sinceStart + at)) },
			func(int, time.Duration) {})
	})
	r.Writers = p.publishers
	return r, err
}

// endToEnd runs publish through a pubsub.Topic and a pubsub.Router on the
// subscription together; publish records in scheduled[i] when message i
// counts as sent (after start). The result's rate is handled messages per
// second.
func endToEnd(ctx context.Context, d *PubSubDestination, p pubsubParams,
	publish func(ctx context.Context, topic *pubsub.Topic, start time.Time, scheduled []atomic.Int64) error) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	topic := pubsub.NewTopic(d.Topic, nil)
	scheduled := make([]atomic.Int64, p.messages)
	lat := make(latencies, p.messages)
	start := time.Now()
	var handleErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		handleErr = handleAll(ctx, d.Subscription, p.messages, func(i int, at time.Time) {
			lat[i] = at.Sub(start) - time.Duration(scheduled[i].Load())
		})
		if handleErr != nil {
			cancel()
		}
	})
	pubErr := publish(ctx, topic, start, scheduled)
	if pubErr != nil {
		cancel()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Result{Events: p.messages}
	lat.summarize(&r, elapsed)
	return r, errors.Join(pubErr, handleErr, topic.Close())
}
