package compose_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/compose"
)

// backend is a batch function that records its calls and returns
// "v<key>" for keys below limit.
type backend struct {
	mu      sync.Mutex
	batches [][]int
	limit   int
	err     error
	hold    chan struct{} // when set, calls wait for it (or their context)
	latency time.Duration // each call takes this long
}

func (b *backend) load(ctx context.Context, keys []int) (map[int]string, error) {
	b.mu.Lock()
	b.batches = append(b.batches, append([]int(nil), keys...))
	b.mu.Unlock()
	if b.latency > 0 {
		time.Sleep(b.latency) // in a synctest bubble: fake time
	}
	if b.hold != nil {
		select {
		case <-b.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	m := make(map[int]string, len(keys))
	for _, k := range keys {
		if k < b.limit {
			m[k] = fmt.Sprint("v", k)
		}
	}
	return m, nil
}

func (b *backend) calls() [][]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]int(nil), b.batches...)
}

// TestLoaderCollapsesLookups is the proof: 100 concurrent lookups
// over 37 keys become ⌈37/MaxBatch⌉ batch calls, each key asked for once:
// with a request-scoped cache, or without one while the calls are in
// flight (a backend that takes 10ms).
func TestLoaderCollapsesLookups(t *testing.T) {
	for _, maxBatch := range []int{1, 5, 10, 37, 100} {
		for _, cache := range []bool{true, false} {
			t.Run(fmt.Sprint("MaxBatch=", maxBatch, "/Cache=", cache), func(t *testing.T) {
				collapse(t, maxBatch, cache)
			})
		}
	}
}

func collapse(t *testing.T, maxBatch int, cache bool) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 1000}
		if !cache {
			be.latency = 10 * time.Millisecond
		}
		l := compose.NewLoader(be.load, &compose.LoaderOptions{MaxBatch: maxBatch, Wait: 5 * time.Millisecond, Cache: cache})
		defer l.Close()
		got := make([]string, 100)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				v, err := l.Load(t.Context(), i%37)
				if err != nil {
					t.Errorf("Load(%d): %v", i%37, err)
				}
				got[i] = v
			})
		}
		wg.Wait()
		for i, v := range got {
			if want := fmt.Sprint("v", i%37); v != want {
				t.Errorf("lookup %d = %q, want %q", i, v, want)
			}
		}
		calls := be.calls()
		if want := (37 + maxBatch - 1) / maxBatch; len(calls) != want {
			t.Errorf("%d batch calls, want ⌈37/%d⌉ = %d", len(calls), maxBatch, want)
		}
		var all []int
		for _, c := range calls {
			if len(c) > maxBatch {
				t.Errorf("batch of %d keys exceeds MaxBatch %d", len(c), maxBatch)
			}
			all = append(all, c...)
		}
		want := make([]int, 37)
		for i := range want {
			want[i] = i
		}
		if diff := cmp.Diff(want, sorted(all)); diff != "" {
			t.Errorf("keys sent (each exactly once) (-want +got)\n%s", diff)
		}
	})
}

func TestLoaderWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 1000}
		l := compose.NewLoader(be.load, &compose.LoaderOptions{Wait: 10 * time.Millisecond})
		defer l.Close()
		var wg sync.WaitGroup
		load := func(k int) { wg.Go(func() { l.Load(t.Context(), k) }) }
		load(1)
		time.Sleep(9 * time.Millisecond)
		load(2) // still within the first batch's window
		time.Sleep(2 * time.Millisecond)
		load(3) // the first batch has been sent
		wg.Wait()
		if diff := cmp.Diff([][]int{{1, 2}, {3}}, be.calls()); diff != "" {
			t.Errorf("batches (-want +got)\n%s", diff)
		}
	})
}

func TestLoaderErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 2}
		l := compose.NewLoader(be.load, nil)
		defer l.Close()
		vals, errs := l.LoadMany(t.Context(), []int{0, 1, 2})
		if diff := cmp.Diff([]string{"v0", "v1", ""}, vals); diff != "" {
			t.Errorf("values (-want +got)\n%s", diff)
		}
		var ke *compose.KeyError
		if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], compose.ErrNotFound) ||
			!errors.As(errs[2], &ke) || ke.Key != 2 {
			t.Errorf("errs = %v, want a *KeyError for key 2 wrapping ErrNotFound", errs)
		}

		errDB := errors.New("database down")
		failing := compose.NewLoader((&backend{err: errDB}).load, nil)
		defer failing.Close()
		_, errs = failing.LoadMany(t.Context(), []int{1, 2})
		var be2 *compose.BatchError
		for i, err := range errs {
			if !errors.Is(err, errDB) || !errors.As(err, &be2) || be2.Keys != 2 {
				t.Errorf("key %d: err = %v, want a *BatchError of 2 keys wrapping %v", i, err, errDB)
			}
		}

		errBad := errors.New("bad key")
		partial := compose.NewLoader(func(ctx context.Context, keys []int) (map[int]string, error) {
			return map[int]string{1: "one"}, compose.KeyErrors[int]{2: errBad}
		}, nil)
		defer partial.Close()
		vals, errs = partial.LoadMany(t.Context(), []int{1, 2, 3})
		if vals[0] != "one" || errs[0] != nil || !errors.Is(errs[1], errBad) || !errors.Is(errs[2], compose.ErrNotFound) {
			t.Errorf("per-key errors: vals %q errs %v; want one, %v, not found", vals, errs, errBad)
		}

		panicky := compose.NewLoader(func(ctx context.Context, keys []int) (map[int]string, error) { panic("kaput") }, nil)
		defer panicky.Close()
		var pe *compose.PanicError
		if _, err := panicky.Load(t.Context(), 1); !errors.As(err, &pe) {
			t.Errorf("Load with a panicking batch = %v, want a *PanicError", err)
		}
	})
}

func TestLoaderCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 1000, hold: make(chan struct{})}
		l := compose.NewLoader(be.load, nil)
		defer l.Close()
		first, cancelFirst := context.WithCancel(t.Context())
		type res struct {
			V   string
			Err error
		}
		got := make([]res, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			ctx := t.Context()
			if i == 0 {
				ctx = first // opens the batch
			}
			wg.Go(func() {
				v, err := l.Load(ctx, 7)
				got[i] = res{v, err}
			})
			synctest.Wait()
		}
		time.Sleep(time.Millisecond) // the window ends: the batch is sent
		synctest.Wait()
		cancelFirst()
		synctest.Wait()
		close(be.hold)
		wg.Wait()
		if !errors.Is(got[0].Err, context.Canceled) {
			t.Errorf("cancelled caller: %+v, want context.Canceled", got[0])
		}
		for i := 1; i < 3; i++ {
			if got[i] != (res{V: "v7"}) {
				t.Errorf("caller %d: %+v, want v7 (another caller's cancellation must not fail it)", i, got[i])
			}
		}
		if n := len(be.calls()); n != 1 {
			t.Errorf("%d batch calls, want 1", n)
		}
		done, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := l.Load(done, 8); !errors.Is(err, context.Canceled) {
			t.Errorf("Load on a cancelled context = %v, want context.Canceled", err)
		}
		time.Sleep(time.Second)
		if n := len(be.calls()); n != 1 {
			t.Errorf("a Load on a cancelled context made a batch call (%d calls)", n)
		}
	})
}

func TestLoaderTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{hold: make(chan struct{})} // never released
		l := compose.NewLoader(be.load, &compose.LoaderOptions{Timeout: 3 * time.Second})
		defer l.Close()
		start := time.Now()
		_, err := l.Load(t.Context(), 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Load = %v, want the batch's deadline exceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second+time.Millisecond {
			t.Errorf("gave up after %v, want the 1ms window plus the 3s Timeout", d)
		}
	})
}

func TestLoaderCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 5}
		l := compose.NewLoader(be.load, &compose.LoaderOptions{Cache: true})
		defer l.Close()
		l.Prime(9, "primed")
		l.LoadMany(t.Context(), []int{1, 6})
		l.LoadMany(t.Context(), []int{1, 6, 9}) // 1 and its miss 6 are cached, 9 primed
		l.Forget(1)
		v, err := l.Load(t.Context(), 1)
		if v != "v1" || err != nil {
			t.Errorf("Load(1) after Forget = %q, %v", v, err)
		}
		if v, _ := l.Load(t.Context(), 9); v != "primed" {
			t.Errorf("Load(9) = %q, want the primed value", v)
		}
		if diff := cmp.Diff([][]int{{1, 6}, {1}}, be.calls()); diff != "" {
			t.Errorf("batches (-want +got)\n%s", diff)
		}

		// Without Cache, every Load after the first batch asks again.
		be2 := &backend{limit: 5}
		l2 := compose.NewLoader(be2.load, nil)
		defer l2.Close()
		l2.Load(t.Context(), 1)
		l2.Load(t.Context(), 1)
		if n := len(be2.calls()); n != 2 {
			t.Errorf("without Cache: %d calls, want 2", n)
		}
	})
}

func TestLoaderClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &backend{limit: 1000, hold: make(chan struct{})}
		l := compose.NewLoader(be.load, &compose.LoaderOptions{MaxBatch: 1, Wait: time.Hour})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = l.Load(t.Context(), 1) }) // sent at once (MaxBatch 1), held
		synctest.Wait()
		l2 := compose.NewLoader(be.load, &compose.LoaderOptions{Wait: time.Hour})
		wg.Go(func() { _, errs[1] = l2.Load(t.Context(), 2) }) // collecting for an hour
		synctest.Wait()
		l.Close()
		l2.Close()
		wg.Wait()
		if !errors.Is(errs[0], context.Canceled) || !errors.Is(errs[1], compose.ErrClosed) {
			t.Errorf("errs = %v, want [a cancelled batch, ErrClosed]", errs)
		}
		if _, err := l.Load(t.Context(), 3); !errors.Is(err, compose.ErrClosed) {
			t.Errorf("Load after Close = %v, want ErrClosed", err)
		}
	})
}

func TestLoaderHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []compose.BatchInfo
		be := &backend{limit: 2}
		l := compose.NewLoader(be.load, &compose.LoaderOptions{Hooks: compose.LoaderHooks{OnBatch: func(bi compose.BatchInfo) {
			got = append(got, bi)
		}}})
		defer l.Close()
		l.LoadMany(t.Context(), []int{0, 1, 2, 2})
		if diff := cmp.Diff([]compose.BatchInfo{{Keys: 3, Found: 2}}, got); diff != "" {
			t.Errorf("OnBatch (-want +got)\n%s", diff)
		}
	})
}
