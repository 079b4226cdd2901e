package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience"
)

var errBusiness = errors.New("order not found")
var errDown = errors.New("connection refused")

// TestBreakerScripts runs the state-machine scripts in testdata/breaker
// on a fake clock. Commands (one per line, # starts a comment):
//
//	breaker key=value…       build the breaker (window-calls, window-seconds, min-calls,
//	                         failure-rate, slow-call, slow-rate, open-for, probes)
//	call OUTCOME [xN] [rejected]
//	                         N calls (default 1), each ok, fail, slow (2×slow-call, then ok),
//	                         slow-fail, neutral (a declared business error) or cancel (the
//	                         caller cancels); "rejected": each must fail fast with ErrOpen
//	start OUTCOME [xN]       N concurrent calls that block until finish
//	finish                   unblocks the started calls and waits for them
//	wait DURATION            advance the fake clock
//	state STATE              the breaker's state must be STATE
//	counts CALLS FAILS SLOW  the window must hold these counts
//	transitions A>B …        the transitions since the last check (or "none")
func TestBreakerScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/breaker/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/breaker")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) { runScript(t, string(data)) })
		})
	}
}

type script struct {
	t           *testing.T
	b           *resilience.Breaker
	p           *resilience.Pipeline[int]
	slow        time.Duration
	transitions []string
	mu          sync.Mutex
	release     chan struct{}
	wg          sync.WaitGroup
}

func runScript(t *testing.T, text string) {
	s := &script{t: t}
	for n, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := s.exec(f); err != nil {
			t.Fatalf("line %d %q: %v", n+1, strings.TrimSpace(line), err)
		}
	}
	if s.release != nil {
		t.Fatal("script ends with started calls: add finish")
	}
}

func (s *script) exec(f []string) error {
	switch f[0] {
	case "breaker":
		return s.build(f[1:])
	case "call":
		return s.call(f[1:])
	case "start":
		return s.start(f[1:])
	case "finish":
		close(s.release)
		s.wg.Wait()
		s.release = nil
	case "wait":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return err
		}
		time.Sleep(d)
	case "state":
		if got := s.b.State().String(); got != f[1] {
			return fmt.Errorf("state %s, want %s", got, f[1])
		}
	case "counts":
		c, fl, sl := s.b.Counts()
		if got, want := fmt.Sprint(c, fl, sl), strings.Join(f[1:], " "); got != want {
			return fmt.Errorf("counts %s, want %s", got, want)
		}
	case "transitions":
		s.mu.Lock()
		got := s.transitions
		s.transitions = nil
		s.mu.Unlock()
		want := f[1:]
		if len(want) == 1 && want[0] == "none" {
			want = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return fmt.Errorf("transitions (-want +got):\n%s", diff)
		}
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

func (s *script) build(args []string) error {
	var o resilience.BreakerOptions
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "window-calls":
			o.WindowCalls, err = strconv.Atoi(v)
		case "window-seconds":
			var n int
			n, err = strconv.Atoi(v)
			o.WindowDuration = time.Duration(n) * time.Second
		case "min-calls":
			o.MinCalls, err = strconv.Atoi(v)
		case "probes":
			o.HalfOpenProbes, err = strconv.Atoi(v)
		case "failure-rate":
			o.FailureRate, err = strconv.ParseFloat(v, 64)
		case "slow-rate":
			o.SlowCallRate, err = strconv.ParseFloat(v, 64)
		case "slow-call":
			o.SlowCall, err = time.ParseDuration(v)
		case "open-for":
			o.OpenFor, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown option %q", k)
		}
		if err != nil {
			return err
		}
	}
	o.Hooks.OnStateChange = func(c resilience.StateChange) {
		s.mu.Lock()
		s.transitions = append(s.transitions, c.From.String()+">"+c.To.String())
		s.mu.Unlock()
	}
	b, err := resilience.NewBreaker("dep", o)
	if err != nil {
		return err
	}
	s.b, s.slow = b, o.SlowCall
	s.p, err = resilience.New[int](resilience.Options{Name: "dep", Neutral: func(err error) bool { return errors.Is(err, errBusiness) }}, b)
	return err
}

func repeat(args []string) (outcome string, n int, rest []string, err error) {
	outcome, n, rest = args[0], 1, args[1:]
	if len(rest) > 0 && strings.HasPrefix(rest[0], "x") {
		n, err = strconv.Atoi(rest[0][1:])
		rest = rest[1:]
	}
	return outcome, n, rest, err
}

// fn returns the function a call runs for outcome; block, when not nil,
// is waited on first.
func (s *script) fn(outcome string, cancel context.CancelFunc, block chan struct{}, ran *bool) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		*ran = true
		if block != nil {
			<-block
		}
		switch outcome {
		case "ok":
			return 1, nil
		case "fail":
			return 0, errDown
		case "slow":
			time.Sleep(2 * s.slow)
			return 1, nil
		case "slow-fail":
			time.Sleep(2 * s.slow)
			return 0, errDown
		case "neutral":
			return 0, errBusiness
		case "cancel":
			cancel()
			return 0, ctx.Err()
		}
		panic("unknown outcome " + outcome)
	}
}

func (s *script) call(args []string) error {
	outcome, n, rest, err := repeat(args)
	if err != nil {
		return err
	}
	wantRejected := len(rest) > 0 && rest[0] == "rejected"
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		ran := false
		_, err := s.p.Do(ctx, s.fn(outcome, cancel, nil, &ran))
		cancel()
		if rejected := errors.Is(err, resilience.ErrOpen); rejected != wantRejected || ran == wantRejected {
			return fmt.Errorf("call %d: ran %v, error %v; want rejected %v", i+1, ran, err, wantRejected)
		}
	}
	return nil
}

func (s *script) start(args []string) error {
	outcome, n, _, err := repeat(args)
	if err != nil {
		return err
	}
	if s.release == nil {
		s.release = make(chan struct{})
	}
	for range n {
		ran := false
		s.wg.Go(func() {
			s.p.Do(context.Background(), s.fn(outcome, nil, s.release, &ran))
		})
	}
	synctest.Wait()
	return nil
}

// TestCallerDeadlineCountsAsSlow: a hung dependency trips the breaker on
// its slow-call rate even when every caller's own deadline is shorter than
// the pipeline's timeouts (those deadlines are not failures); the caller's
// cancellation stays neutral.
func TestCallerDeadlineCountsAsSlow(t *testing.T) {
	hung := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tc := range []struct {
		name string
		end  func(ctx context.Context) (context.Context, context.CancelFunc)
		want resilience.State
	}{
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 80*time.Millisecond)
		}, resilience.StateOpen},
		{"short deadline, not slow", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 10*time.Millisecond)
		}, resilience.StateClosed},
		{"cancel", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(80*time.Millisecond, cancel)
			return ctx, cancel
		}, resilience.StateClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := must(resilience.NewBreaker("dep", resilience.BreakerOptions{WindowCalls: 10, MinCalls: 5,
					SlowCall: 50 * time.Millisecond, SlowCallRate: 0.5}))
				p := mustPipeline[int](t, resilience.Options{}, resilience.Timeout(time.Second), b)
				var outcomes []string
				for range 5 {
					ctx, cancel := tc.end(t.Context())
					err := p.DoErr(ctx, hung)
					cancel()
					outcomes = append(outcomes, fmt.Sprint(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)))
				}
				if got := b.State(); got != tc.want {
					t.Errorf("breaker %v after 5 calls ended by the caller, want %v (errors passed through: %v)", got, tc.want, outcomes)
				}
			})
		})
	}
}
