package compose

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Options configure a Group. The zero value works.
type Options struct {
	// Timeout is the shared deadline of every branch, counted from
	// NewGroup; 0 keeps only the parent context's deadline.
	Timeout time.Duration
	// Hooks observe the group.
	Hooks Hooks
}

// Hooks are optional callbacks for telemetry; they run on the branch's
// goroutine and must be safe for concurrent use.
type Hooks struct {
	// OnBranch runs when a branch returns, before its result is visible.
	OnBranch func(BranchInfo)
}

// BranchInfo describes a finished branch.
type BranchInfo struct {
	Name     string
	Required bool
	Duration time.Duration
	Err      error
}

// BranchError is the failure of one branch.
type BranchError struct {
	Branch   string
	Required bool
	Err      error
}

func (e *BranchError) Error() string {
	kind := "optional"
	if e.Required {
		kind = "required"
	}
	return fmt.Sprintf("compose: %s branch %q: %v", kind, e.Branch, e.Err)
}

func (e *BranchError) Unwrap() error { return e.Err }

// GroupError is returned by Wait when a required branch failed. Failed
// lists every failed branch, required and optional, in the order they
// were started.
type GroupError struct {
	Failed []*BranchError
}

func (e *GroupError) Error() string {
	var b strings.Builder
	b.WriteString("compose: ")
	n := 0
	for _, f := range e.Failed {
		if f.Required {
			n++
		}
	}
	fmt.Fprintf(&b, "%d required branch(es) failed:", n)
	for _, f := range e.Failed {
		b.WriteString(" ")
		b.WriteString(f.Error())
		b.WriteString(";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns the branches' errors, for errors.Is and errors.As.
func (e *GroupError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f
	}
	return errs
}

// PanicError is a branch's (or a batch function's) panic, recovered.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("compose: panic: %v", e.Value) }

// Group runs branches concurrently under one shared context and deadline,
// and collects their results and errors. A required branch that fails
// cancels the others; an optional branch that fails leaves a partial
// result. Its methods are safe for concurrent use.
type Group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   context.CancelFunc
	hooks  Hooks
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		branches []*branch
	}
}

type branch struct {
	name     string
	required bool
	done     chan struct{}
	err      error // set before done is closed
}

// NewGroup returns a group whose branches run on a context derived from
// ctx with opts.Timeout as the shared deadline. opts may be nil.
func NewGroup(ctx context.Context, opts *Options) *Group {
	var o Options
	if opts != nil {
		o = *opts
	}
	g := &Group{hooks: o.Hooks, stop: func() {}}
	if o.Timeout > 0 {
		ctx, g.stop = context.WithTimeout(ctx, o.Timeout)
	}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	return g
}

// Context returns the context the branches run on: cancelled at the
// shared deadline, when the parent is, when a required branch fails
// (context.Cause then returns that branch's *BranchError), and by Wait.
func (g *Group) Context() context.Context { return g.ctx }

// Branch is the future result of one branch.
type Branch[T any] struct {
	b   *branch
	val T
}

// Go starts a required branch: if it fails, the group's context is
// cancelled and Wait returns a *GroupError. fn must return soon after its
// context is done.
func Go[T any](g *Group, name string, fn func(ctx context.Context) (T, error)) *Branch[T] {
	return start(g, name, true, fn)
}

// Optional starts an optional branch: its failure is reported by its
// Branch and by Group.Errors, and the other branches carry on.
func Optional[T any](g *Group, name string, fn func(ctx context.Context) (T, error)) *Branch[T] {
	return start(g, name, false, fn)
}

func start[T any](g *Group, name string, required bool, fn func(context.Context) (T, error)) *Branch[T] {
	br := &Branch[T]{b: &branch{name: name, required: required, done: make(chan struct{})}}
	g.mu.Lock()
	g.mu.branches = append(g.mu.branches, br.b)
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		begin := time.Now()
		v, err := protect(g.ctx, fn)
		if err != nil {
			if required {
				g.cancel(&BranchError{Branch: name, Required: true, Err: err})
			}
		} else {
			br.val = v
		}
		br.b.err = err
		if g.hooks.OnBranch != nil {
			g.hooks.OnBranch(BranchInfo{Name: name, Required: required, Duration: time.Since(begin), Err: err})
		}
		close(br.b.done)
	}()
	return br
}

// protect calls fn, turning a panic into a *PanicError.
func protect[T any](ctx context.Context, fn func(context.Context) (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// Result waits for the branch and returns its value, or its error (the
// value is then the zero T).
func (b *Branch[T]) Result() (T, error) {
	<-b.b.done
	if b.b.err != nil {
		var zero T
		return zero, b.b.err
	}
	return b.val, nil
}

// Value waits for the branch and returns its value: the zero T when it
// failed.
func (b *Branch[T]) Value() T {
	v, _ := b.Result()
	return v
}

// Err waits for the branch and returns its error.
func (b *Branch[T]) Err() error {
	<-b.b.done
	return b.b.err
}

// Wait waits for every branch started so far, then cancels the group's
// context (branches started after Wait run on that cancelled context). It returns nil when every required branch succeeded (optional
// ones may have failed: see Errors), or a *GroupError.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel(context.Canceled)
	g.stop()
	failed := g.Errors()
	for _, f := range failed {
		if f.Required {
			return &GroupError{Failed: failed}
		}
	}
	return nil
}

// Errors returns the failures of the finished branches, in the order the
// branches were started.
func (g *Group) Errors() []*BranchError {
	g.mu.Lock()
	defer g.mu.Unlock()
	var failed []*BranchError
	for _, b := range g.mu.branches {
		select {
		case <-b.done:
			if b.err != nil {
				failed = append(failed, &BranchError{Branch: b.name, Required: b.required, Err: b.err})
			}
		default:
		}
	}
	return failed
}

// All runs fns concurrently under one deadline (timeout from now; 0 keeps
// only ctx's) and returns every result and every error by position:
// partial results, errs[i] non-nil where fns[i] failed. errs is nil when
// all succeeded. A failure does not cancel the other calls.
func All[T any](ctx context.Context, timeout time.Duration, fns ...func(ctx context.Context) (T, error)) (results []T, errs []error) {
	g := NewGroup(ctx, &Options{Timeout: timeout})
	branches := make([]*Branch[T], len(fns))
	for i, fn := range fns {
		branches[i] = Optional(g, fmt.Sprint(i), fn)
	}
	g.Wait()
	results = make([]T, len(fns))
	for i, b := range branches {
		v, err := b.Result()
		results[i] = v
		if err != nil {
			if errs == nil {
				errs = make([]error, len(fns))
			}
			errs[i] = err
		}
	}
	return results, errs
}
