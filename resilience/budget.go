package resilience

import (
	"fmt"
	"time"
)

// BudgetOptions configure a retry Budget. The zero value allows retries up
// to 10% of the calls in a 10-second window, plus 5 retries per second.
type BudgetOptions struct {
	// Ratio is the fraction of calls that may be retried, in [0, 1]
	// (default 0.1; a negative value is invalid, and so is more than 1).
	Ratio float64
	// NoRatio makes a zero Ratio mean zero instead of the default.
	NoRatio bool
	// MinPerSecond is the floor: retries per second always allowed, so
	// that a service with little traffic can still retry (default 5;
	// NoFloor makes 0 mean 0).
	MinPerSecond float64
	// NoFloor makes a zero MinPerSecond mean zero instead of the default.
	NoFloor bool
	// Window is the sliding window the counts cover, whole seconds
	// (default 10s).
	Window time.Duration
}

// Budget bounds retries across every call of the pipelines whose Retry
// names it: a retry is allowed while the retries in the window stay under
// Ratio × calls + MinPerSecond × window. It makes retries unable to
// multiply the load on a failing dependency. It is safe for concurrent use;
// counting a call costs two atomic operations.
type Budget struct {
	o     BudgetOptions
	clk   clock
	win   window // a: calls, b: retries; one bucket per second
	floor float64
}

// NewBudget returns a budget or a *ConfigError.
func NewBudget(o BudgetOptions) (*Budget, error) {
	switch {
	case o.Ratio < 0 || o.Ratio > 1:
		return nil, configErr("retry budget", fmt.Sprintf("Ratio %v is outside [0, 1]", o.Ratio),
			"a budget over 100% lets retries multiply load; use e.g. 0.1 for 10% of calls")
	case o.MinPerSecond < 0:
		return nil, configErr("retry budget", fmt.Sprintf("MinPerSecond %v is negative", o.MinPerSecond), "use 0 for the default of 5, or a small positive floor")
	case o.Window < 0 || o.Window%time.Second != 0 || o.Window > time.Hour:
		return nil, configErr("retry budget", fmt.Sprintf("Window %v is not a whole number of seconds up to an hour", o.Window), "use 0 for the default of 10s, or e.g. 30*time.Second")
	}
	if o.Ratio == 0 && !o.NoRatio {
		o.Ratio = 0.1
	}
	if o.MinPerSecond == 0 && !o.NoFloor {
		o.MinPerSecond = 5
	}
	if o.Window == 0 {
		o.Window = 10 * time.Second
	}
	n := int(o.Window / time.Second)
	return &Budget{o: o, clk: newClock(), win: newWindow(n), floor: o.MinPerSecond * float64(n)}, nil
}

// String describes the budget as Pipeline.String prints it.
func (b *Budget) String() string {
	return fmt.Sprintf("budget %g%%+%g/s", b.o.Ratio*100, b.o.MinPerSecond)
}

// deposit counts a call (its first attempt) at budget time now.
func (b *Budget) deposit(now int64) {
	b.win.add(now/int64(time.Second), 1, 0, 0)
}

// withdraw takes a retry from the budget if there is room.
func (b *Budget) withdraw(now int64) bool {
	g := now / int64(time.Second)
	calls, retries, _ := b.win.sum(g)
	if float64(retries) >= b.o.Ratio*float64(calls)+b.floor {
		return false
	}
	b.win.add(g, 0, 1, 0)
	return true
}

// Counts returns the calls and retries in the current window.
func (b *Budget) Counts() (calls, retries int64) {
	calls, retries, _ = b.win.sum(b.clk.now() / int64(time.Second))
	return calls, retries
}
