package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
	{"publish", "a Send of one message, awaiting the broker's ack", 20_000, benchPublish},
	{"e2e-rate", "publish→received latency at a fixed rate, from each message's scheduled send time", 5_000, benchE2ERate},
	{"e2e-max", "publish→received latency with publishers at full speed", 20_000, benchE2EMax},
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

// benchMessage is message i of a run: its id is i, so a receiver finds
// when it was sent.
func benchMessage(i int, data []byte) *driver.Message {
	return &driver.Message{
		Attributes: map[string]string{"id": strconv.Itoa(i), "source": "/fjord/bench", "specversion": "1.0",
			"type": "fjord.bench"},
		Key:  "k" + strconv.Itoa(i%64),
		Data: data,
	}
}

// benchPublish publishes p.messages from p.publishers goroutines, one
// message per Send, timing each Send.
func benchPublish(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	lat := make(latencies, p.messages)
	data := payload(p.size)
	start := time.Now()
	err := publishAll(ctx, d.Topic, p, data, func(i int, took time.Duration) { lat[i] = took })
	elapsed := time.Since(start)
	r := Result{Events: p.messages, Writers: p.publishers}
	lat.summarize(&r, elapsed)
	return r, err
}

// publishAll sends messages 0..p.messages-1 from p.publishers goroutines,
// message i by publisher i mod p.publishers in order, and reports each
// Send's duration.
func publishAll(ctx context.Context, tp driver.Topic, p pubsubParams, data []byte, done func(i int, took time.Duration)) error {
	var wg sync.WaitGroup
	errs := make([]error, p.publishers)
	for w := range p.publishers {
		wg.Go(func() {
			for i := w; i < p.messages && ctx.Err() == nil; i += p.publishers {
				t0 := time.Now()
				if err := tp.Send(ctx, []*driver.Message{benchMessage(i, data)}); err != nil {
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

// receiveAll receives until n distinct messages have arrived, acking each
// batch, and calls got with each message's index and arrival time.
func receiveAll(ctx context.Context, sub driver.Subscription, n int, got func(i int, at time.Time)) error {
	seen := make([]bool, n)
	for count := 0; count < n; {
		msgs, err := sub.Receive(ctx, 256)
		if err != nil {
			return fmt.Errorf("after %d of %d messages: %w", count, n, err)
		}
		at := time.Now()
		ids := make([]driver.AckID, len(msgs))
		for j, m := range msgs {
			ids[j] = m.AckID
			i, err := strconv.Atoi(m.Attributes["id"])
			if err != nil || i < 0 || i >= n {
				return fmt.Errorf("received a message with id %q, not one of this run", m.Attributes["id"])
			}
			if !seen[i] {
				seen[i] = true
				count++
				got(i, at)
			}
		}
		if err := sub.Ack(ctx, ids); err != nil {
			return err
		}
	}
	return nil
}

// benchE2ERate publishes at p.rate messages per second from one goroutine
// and times each message from its scheduled send time to its receipt, so
// that a stall delays the clock of every message behind it (no
// coordinated omission).
func benchE2ERate(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	interval := time.Second / time.Duration(p.rate)
	return endToEnd(ctx, d, p, func(ctx context.Context, start time.Time, scheduled []atomic.Int64) error {
		data := payload(p.size)
		for i := 0; i < p.messages && ctx.Err() == nil; i++ {
			at := time.Duration(i) * interval
			scheduled[i].Store(int64(at))
			if wait := time.Until(start.Add(at)); wait > 0 {
				time.Sleep(wait) // pacing the publisher, not waiting for a result
			}
			if err := d.Topic.Send(ctx, []*driver.Message{benchMessage(i, data)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// benchE2EMax publishes from p.publishers goroutines as fast as the broker
// acknowledges and times each message from the start of its Send to its
// receipt.
func benchE2EMax(ctx context.Context, d *PubSubDestination, p pubsubParams) (Result, error) {
	r, err := endToEnd(ctx, d, p, func(ctx context.Context, start time.Time, scheduled []atomic.Int64) error {
		var wg sync.WaitGroup
		errs := make([]error, p.publishers)
		data := payload(p.size)
		for w := range p.publishers {
			wg.Go(func() {
				for i := w; i < p.messages && ctx.Err() == nil; i += p.publishers {
					scheduled[i].Store(int64(time.Since(start)))
					if err := d.Topic.Send(ctx, []*driver.Message{benchMessage(i, data)}); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	r.Writers = p.publishers
	return r, err
}

// endToEnd runs publish and a receiver together; publish records in
// scheduled[i] when message i counts as sent (after start). The result's
// rate is received messages per second.
func endToEnd(ctx context.Context, d *PubSubDestination, p pubsubParams,
	publish func(ctx context.Context, start time.Time, scheduled []atomic.Int64) error) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	scheduled := make([]atomic.Int64, p.messages)
	lat := make(latencies, p.messages)
	start := time.Now()
	var recvErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		recvErr = receiveAll(ctx, d.Subscription, p.messages, func(i int, at time.Time) {
			lat[i] = at.Sub(start) - time.Duration(scheduled[i].Load())
		})
		if recvErr != nil {
			cancel()
		}
	})
	pubErr := publish(ctx, start, scheduled)
	if pubErr != nil {
		cancel()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Result{Events: p.messages}
	lat.summarize(&r, elapsed)
	return r, errors.Join(pubErr, recvErr)
}
