package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// Handler handles one message. It returns nil when the message is done
// (it is then acknowledged), an error to have it retried, or an error
// wrapped by Permanent (or matching ErrPoison) to have it parked at once.
// It must return when ctx ends (the per-attempt timeout, or Run ending).
type Handler func(ctx context.Context, m *Message) error

// BatchHandler handles several messages of one type at once; its error
// applies to all of them. The messages of one key are in receive order.
type BatchHandler func(ctx context.Context, msgs []*Message) error

// ErrPoison is matched by errors that mean a message can never be handled
// (undecodable data, a type the consumer cannot understand): such a
// message is parked at once, without retries.
var ErrPoison = errors.New("pubsub: poison message")

// Permanent wraps err so that errors.Is(err, ErrPoison): the router parks
// the message at once instead of retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPoison }

// PanicError is a handler's panic, recovered and treated as a failure.
type PanicError struct {
	Value any
	Stack []byte // debug.Stack() at the recovery
}

// Error says the handler panicked, with the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("pubsub: handler panicked: %v", e.Value) }

// ErrNoParkTopic is the error of parking a message when
// RouterOptions.Park is nil: the message stays unacknowledged and is
// tried again, so that it is never lost.
var ErrNoParkTopic = errors.New("pubsub: no park topic configured (RouterOptions.Park)")

// UnhandledPolicy says what happens to a message no handler is registered
// for.
type UnhandledPolicy int

const (
	// ParkUnhandled parks it (the default): nothing is lost, and it can be
	// requeued once a handler exists.
	ParkUnhandled UnhandledPolicy = iota
	// AckUnhandled acknowledges it and reports it to Hooks.OnUnhandled.
	AckUnhandled
)

// BatchOptions tune a batch handler. The zero value works.
type BatchOptions struct {
	// Size is the most messages per call (default 100).
	Size int
	// MaxWait is how long a partial batch waits for more messages
	// (default 50ms).
	MaxWait time.Duration
}

// RouterOptions tune a Router. The zero value works, except that without
// Park a message that must be parked is kept and retried instead.
type RouterOptions struct {
	// Consumer and Topic name this consumer and the destination it reads;
	// both are recorded on parked messages (requeue sends back to Topic)
	// and in logs.
	Consumer, Topic string
	// Concurrency is how many messages are handled at once (default 8).
	// Messages of one order key are handled one at a time, in receive
	// order; a key that is retrying holds back only its own messages.
	Concurrency int
	// MaxInFlight bounds the messages received and not yet settled
	// (default 1000). The messages queued behind a key that is retrying
	// count too: when they fill it, receiving pauses until the key
	// recovers or its message is parked.
	MaxInFlight int
	// ReceiveBatch is the most messages asked of one driver Receive
	// (default 100).
	ReceiveBatch int
	// MaxAttempts is how many times a handler is tried before the message
	// is parked (default 5).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the full-jitter exponential backoff
	// between attempts (defaults 100ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// HandlerTimeout bounds each attempt through its context (default 30s;
	// negative: no timeout).
	HandlerTimeout time.Duration
	// Park is the dead-letter destination: messages that exhaust their
	// attempts, are poison, are not valid CloudEvents or have no handler
	// (ParkUnhandled) are published to it with the reason, and then
	// acknowledged. The Router does not close it.
	Park driver.Topic
	// Unhandled is the policy for messages with no handler.
	Unhandled UnhandledPolicy
	// AckBatch and AckDelay bound how acknowledgements are batched: they
	// are sent once AckBatch are pending or AckDelay after the first
	// (defaults 100 and 10ms).
	AckBatch int
	AckDelay time.Duration
	// ShutdownTimeout bounds the final acknowledgements and Nacks once
	// Run's context has ended (default 5s).
	ShutdownTimeout time.Duration
	// Extract, when set, derives each handler's context from the message:
	// package telemetry sets it to continue the trace in "traceparent".
	Extract func(ctx context.Context, m *Message) context.Context
	// Hooks observe every decision.
	Hooks RouterHooks
	// Logger receives retries, parks and errors (nil: discard).
	Logger *slog.Logger
}

// RouterHooks are optional observers of a Router; they must not block.
type RouterHooks struct {
	// OnHandled is called when a handler succeeded.
	OnHandled func(HandleInfo)
	// OnRetry is called when a handler failed and will be tried again.
	OnRetry func(HandleInfo)
	// OnParked is called when a message was parked (Err nil) or parking
	// failed and will be tried again (Err set).
	OnParked func(ParkInfo)
	// OnUnhandled is called for a message acknowledged with no handler
	// (AckUnhandled).
	OnUnhandled func(m *Message)
	// OnAckError is called when acknowledging (or, on shutdown, Nacking)
	// messages failed; the broker will deliver them again.
	OnAckError func(AckErrorInfo)
	// OnReceiveError is called for each failed driver Receive.
	OnReceiveError func(err error)
}

// HandleInfo describes one handler attempt.
type HandleInfo struct {
	// Messages are the messages handled (one, or a batch).
	Messages []*Message
	// Attempt counts from 1.
	Attempt  int
	Duration time.Duration
	Err      error
	// RetryIn is the backoff before the next attempt (OnRetry).
	RetryIn time.Duration
}

// ParkInfo describes a parked message.
type ParkInfo struct {
	// Message is nil when the message is not a valid CloudEvent.
	Message *Message
	// Raw is the message as received.
	Raw      *driver.Message
	Reason   string
	Attempts int
	// Err is set when publishing to the park topic failed.
	Err error
}

// AckErrorInfo describes a failed Ack or Nack.
type AckErrorInfo struct {
	Messages int
	Nack     bool
	Err      error
}

func (o *RouterOptions) withDefaults() RouterOptions {
	var out RouterOptions
	if o != nil {
		out = *o
	}
	setDefault(&out.Concurrency, 8)
	setDefault(&out.MaxInFlight, 1000)
	setDefault(&out.ReceiveBatch, 100)
	setDefault(&out.MaxAttempts, 5)
	setDefault(&out.MinBackoff, 100*time.Millisecond)
	setDefault(&out.MaxBackoff, 30*time.Second)
	out.MaxBackoff = max(out.MaxBackoff, out.MinBackoff)
	if out.HandlerTimeout == 0 {
		out.HandlerTimeout = 30 * time.Second
	}
	setDefault(&out.AckBatch, 100)
	setDefault(&out.AckDelay, 10*time.Millisecond)
	setDefault(&out.ShutdownTimeout, 5*time.Second)
	out.ReceiveBatch = min(out.ReceiveBatch, out.MaxInFlight)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// route is what handles one event type.
type route struct {
	handler Handler
	batch   BatchHandler
	opts    BatchOptions
	typ     string
}

// Router receives from one subscription and hands each message to the
// handler registered for its type: per-key ordered, concurrently across
// keys, with retries, timeouts, panics recovered, batch handlers, and
// parking of what cannot be handled. Register handlers before Run.
type Router struct {
	sub  driver.Subscription
	opts RouterOptions
	mu   struct {
		sync.Mutex
		routes  map[string]*route
		def     Handler
		running bool
	}
}

// NewRouter returns a Router over sub. The caller keeps ownership of sub
// (and of RouterOptions.Park) and closes them after Run returns.
func NewRouter(sub driver.Subscription, opts *RouterOptions) *Router {
	r := &Router{sub: sub, opts: opts.withDefaults()}
	r.mu.routes = make(map[string]*route)
	return r
}

// Handle registers h for messages of eventType. It panics when eventType
// already has a handler, or when called while Run is running.
func (r *Router) Handle(eventType string, h Handler) {
	r.register(eventType, &route{handler: h, typ: eventType})
}

// HandleBatch registers h for messages of eventType, called with up to
// opts.Size messages at once (nil opts: defaults). It panics like Handle.
func (r *Router) HandleBatch(eventType string, h BatchHandler, opts *BatchOptions) {
	var o BatchOptions
	if opts != nil {
		o = *opts
	}
	setDefault(&o.Size, 100)
	setDefault(&o.MaxWait, 50*time.Millisecond)
	r.register(eventType, &route{batch: h, opts: o, typ: eventType})
}

// HandleDefault registers h for messages of every type without a handler
// of its own.
func (r *Router) HandleDefault(h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkIdleLocked()
	r.mu.def = h
}

func (r *Router) register(eventType string, rt *route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkIdleLocked()
	if rt.handler == nil && rt.batch == nil {
		panic("pubsub: nil handler for " + eventType)
	}
	if r.mu.routes[eventType] != nil {
		panic("pubsub: a handler for " + eventType + " is already registered")
	}
	r.mu.routes[eventType] = rt
}

func (r *Router) checkIdleLocked() {
	if r.mu.running {
		panic("pubsub: Router handlers must be registered before Run")
	}
}

// Run receives and handles messages until ctx ends, then returns
// ctx.Err() once every message it received is settled: handled and
// acknowledged, parked, or (when its handler had not finished) given back
// with Nack. It returns early with an error when the subscription fails
// with an error that is not retryable. Handler contexts end with ctx. One
// Run at a time; Run may be called again after it returned.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.mu.running {
		r.mu.Unlock()
		return errors.New("pubsub: Router.Run is already running")
	}
	r.mu.running = true
	routes, def := r.mu.routes, r.mu.def
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.mu.running = false
		r.mu.Unlock()
	}()
	return newRun(r, routes, def).run(ctx)
}
