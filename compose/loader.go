package compose

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// ErrNotFound is the error of a key the batch function did not return.
var ErrNotFound = errors.New("compose: key not found")

// ErrClosed is the error of a Load on a closed Loader, and of the keys
// still waiting for their batch when it was closed.
var ErrClosed = errors.New("compose: loader closed")

// KeyError is the error of one key of a batch.
type KeyError struct {
	Key any
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("compose: key %v: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// BatchError is the error of every key of a batch whose call failed as a
// whole.
type BatchError struct {
	Keys int // the batch's size
	Err  error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("compose: batch of %d keys failed: %v", e.Keys, e.Err)
}
func (e *BatchError) Unwrap() error { return e.Err }

// KeyErrors lets a batch function fail some keys only: return the values
// it found and a KeyErrors naming the keys that failed.
type KeyErrors[K comparable] map[K]error

func (e KeyErrors[K]) Error() string { return fmt.Sprintf("compose: %d keys failed", len(e)) }

// BatchFunc loads many keys at once. It returns the values it found; a key
// it leaves out gets ErrNotFound. An error fails every key of the batch,
// unless it is (or wraps) a KeyErrors, which fails only the keys it names.
// keys holds no duplicates.
type BatchFunc[K comparable, V any] func(ctx context.Context, keys []K) (map[K]V, error)

// LoaderOptions configure a Loader. The zero value works.
type LoaderOptions struct {
	// Wait is how long a batch collects keys after its first one before it
	// is sent; default 1 ms.
	Wait time.Duration
	// MaxBatch sends a batch as soon as it holds this many keys; default
	// 100.
	MaxBatch int
	// Timeout bounds each batch call. The call runs on a context detached
	// from the callers' cancellation (it keeps the values, such as the
	// trace context, of the Load that opened the batch), so that one caller
	// giving up does not fail the others. Default 10 s.
	Timeout time.Duration
	// Cache keeps every value (and ErrNotFound) for the Loader's life, so
	// that a Loader made per request answers repeated keys without calls.
	// Other errors are never kept.
	Cache bool
	// Hooks observe the loader.
	Hooks LoaderHooks
}

// LoaderHooks are optional callbacks for telemetry; they must be fast and safe for
// concurrent use.
type LoaderHooks struct {
	// OnBatch runs after each batch call, before its callers get their
	// results.
	OnBatch func(BatchInfo)
}

// BatchInfo describes a finished batch call.
type BatchInfo struct {
	Keys     int
	Found    int
	Duration time.Duration
	Err      error
}

// Loader collapses single-key loads into batched calls (the DataLoader
// pattern): Loads within a short window, or up to MaxBatch keys, become
// one BatchFunc call; concurrent Loads of the same key share one result.
// It is safe for concurrent use. Close it to stop its pending calls.
type Loader[K comparable, V any] struct {
	fn       BatchFunc[K, V]
	opts     LoaderOptions
	closeCtx context.Context
	closeFn  context.CancelFunc
	wg       sync.WaitGroup
	mu       struct {
		sync.Mutex
		pending *batch[K, V]
		calls   map[K]*call[V] // pending, in flight, and (Cache) finished
		closed  bool
	}
}

type batch[K comparable, V any] struct {
	ctx   context.Context // of the Load that opened it
	keys  []K
	calls []*call[V]
	timer *time.Timer
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error // both set before done is closed
}

// NewLoader returns a Loader that calls fn. opts may be nil.
func NewLoader[K comparable, V any](fn BatchFunc[K, V], opts *LoaderOptions) *Loader[K, V] {
	l := &Loader[K, V]{fn: fn}
	if opts != nil {
		l.opts = *opts
	}
	if l.opts.Wait <= 0 {
		l.opts.Wait = time.Millisecond
	}
	if l.opts.MaxBatch <= 0 {
		l.opts.MaxBatch = 100
	}
	if l.opts.Timeout <= 0 {
		l.opts.Timeout = 10 * time.Second
	}
	l.closeCtx, l.closeFn = context.WithCancel(context.Background())
	l.mu.calls = make(map[K]*call[V])
	return l
}

// Load returns the value of k, from the batch that k joins. When ctx ends
// first, Load returns ctx's error and the batch carries on for the
// others. A key the batch function did not return fails with a *KeyError
// wrapping ErrNotFound; a failed batch with a *BatchError.
func (l *Loader[K, V]) Load(ctx context.Context, k K) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	l.mu.Lock()
	c, err := l.enqueueLocked(ctx, k)
	l.mu.Unlock()
	if err != nil {
		var zero V
		return zero, err
	}
	return c.wait(ctx)
}

// LoadMany returns the values of keys, in order; errs is nil when every
// key succeeded, else errs[i] is keys[i]'s error. Its keys are sent
// without waiting for the batch window.
func (l *Loader[K, V]) LoadMany(ctx context.Context, keys []K) (vals []V, errs []error) {
	calls := make([]*call[V], len(keys))
	vals = make([]V, len(keys))
	setErr := func(i int, err error) {
		if errs == nil {
			errs = make([]error, len(keys))
		}
		errs[i] = err
	}
	l.mu.Lock()
	for i, k := range keys {
		c, err := l.enqueueLocked(ctx, k)
		if err != nil {
			setErr(i, err)
			continue
		}
		calls[i] = c
	}
	if b := l.mu.pending; b != nil {
		l.dispatchLocked(b)
	}
	l.mu.Unlock()
	for i, c := range calls {
		if c == nil {
			continue
		}
		v, err := c.wait(ctx)
		if err != nil {
			setErr(i, err)
			continue
		}
		vals[i] = v
	}
	return vals, errs
}

// Prime stores v as k's value when Cache is on and k is not already
// loaded or loading; it makes no call.
func (l *Loader[K, V]) Prime(k K, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.opts.Cache || l.mu.closed {
		return
	}
	if _, ok := l.mu.calls[k]; ok {
		return
	}
	c := &call[V]{done: make(chan struct{}), v: v}
	close(c.done)
	l.mu.calls[k] = c
}

// Forget drops k's cached value or error, so that its next Load calls
// again. A load in progress is not affected.
func (l *Loader[K, V]) Forget(k K) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.mu.calls[k]; ok && c.finished() {
		delete(l.mu.calls, k)
	}
}

// Close fails the keys still collecting with ErrClosed, cancels the batch
// calls in progress, and waits for them to return. Loads after Close fail
// with ErrClosed.
func (l *Loader[K, V]) Close() error {
	l.mu.Lock()
	l.mu.closed = true
	b := l.mu.pending
	l.mu.pending = nil
	if b != nil {
		b.timer.Stop()
		for i, k := range b.keys {
			b.calls[i].err = ErrClosed
			delete(l.mu.calls, k)
			close(b.calls[i].done)
		}
	}
	l.closeFn()
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// enqueueLocked returns the call k joins: one already pending, in flight or
// cached, or a new one in the pending batch.
func (l *Loader[K, V]) enqueueLocked(ctx context.Context, k K) (*call[V], error) {
	if l.mu.closed {
		return nil, ErrClosed
	}
	if c, ok := l.mu.calls[k]; ok {
		return c, nil
	}
	c := &call[V]{done: make(chan struct{})}
	l.mu.calls[k] = c
	b := l.mu.pending
	if b == nil {
		b = &batch[K, V]{ctx: ctx}
		b.timer = time.AfterFunc(l.opts.Wait, func() { l.fire(b) })
		l.mu.pending = b
	}
	b.keys = append(b.keys, k)
	b.calls = append(b.calls, c)
	if len(b.keys) >= l.opts.MaxBatch {
		l.dispatchLocked(b)
	}
	return c, nil
}

// fire sends b when its window ends, unless it was sent (full, LoadMany)
// or failed (Close) before.
func (l *Loader[K, V]) fire(b *batch[K, V]) {
	l.mu.Lock()
	if l.mu.pending != b {
		l.mu.Unlock()
		return
	}
	l.mu.pending = nil
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	l.run(b)
}

// dispatchLocked sends b at once on a goroutine of its own.
func (l *Loader[K, V]) dispatchLocked(b *batch[K, V]) {
	b.timer.Stop()
	l.mu.pending = nil
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(b)
	}()
}

// run calls the batch function and settles every call of b.
func (l *Loader[K, V]) run(b *batch[K, V]) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), l.opts.Timeout)
	stop := context.AfterFunc(l.closeCtx, cancel)
	start := time.Now()
	vals, err := l.protect(ctx, b.keys)
	stop()
	cancel()
	var keyErrs KeyErrors[K]
	perKey := errors.As(err, &keyErrs)
	var batchErr error
	if err != nil && !perKey {
		batchErr = &BatchError{Keys: len(b.keys), Err: err}
	}
	found := 0
	for i, k := range b.keys {
		c := b.calls[i]
		switch {
		case batchErr != nil:
			c.err = batchErr
		case keyErrs[k] != nil:
			c.err = &KeyError{Key: k, Err: keyErrs[k]}
		default:
			if v, ok := vals[k]; ok {
				c.v = v
				found++
			} else {
				c.err = &KeyError{Key: k, Err: ErrNotFound}
			}
		}
	}
	l.mu.Lock()
	for i, k := range b.keys {
		c := b.calls[i]
		keep := l.opts.Cache && (c.err == nil || errors.Is(c.err, ErrNotFound))
		if !keep && l.mu.calls[k] == c {
			delete(l.mu.calls, k)
		}
	}
	l.mu.Unlock()
	if l.opts.Hooks.OnBatch != nil {
		l.opts.Hooks.OnBatch(BatchInfo{Keys: len(b.keys), Found: found, Duration: time.Since(start), Err: err})
	}
	for _, c := range b.calls {
		close(c.done)
	}
}

func (l *Loader[K, V]) protect(ctx context.Context, keys []K) (m map[K]V, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return l.fn(ctx, keys)
}

func (c *call[V]) wait(ctx context.Context) (V, error) {
	select {
	case <-c.done:
		return c.v, c.err
	default:
	}
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (c *call[V]) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
