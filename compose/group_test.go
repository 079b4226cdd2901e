package compose_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/compose"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// after returns a branch that yields v (or err) after d, or its context's
// error if that ends first.
func after[T any](d time.Duration, v T, err error) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		select {
		case <-time.After(d):
			return v, err
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

type user struct{ Name string }

func TestGroupJoinsTypedBranches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := compose.NewGroup(t.Context(), &compose.Options{Timeout: time.Second})
		u := compose.Go(g, "user", after(100*time.Millisecond, user{"ada"}, nil))
		orders := compose.Go(g, "orders", after(200*time.Millisecond, []int{1, 2}, nil))
		start := time.Now()
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Errorf("Wait took %v, want the slowest branch's 200ms (branches run concurrently)", d)
		}
		if diff := cmp.Diff(user{"ada"}, u.Value()); diff != "" {
			t.Errorf("user (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff([]int{1, 2}, orders.Value()); diff != "" {
			t.Errorf("orders (-want +got)\n%s", diff)
		}
		if g.Context().Err() == nil {
			t.Error("the group's context is not cancelled after Wait")
		}
	})
}

func TestGroupPartialResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDown := errors.New("recommendations down")
		g := compose.NewGroup(t.Context(), nil)
		u := compose.Go(g, "user", after(time.Second, user{"ada"}, nil))
		recs := compose.Optional(g, "recommendations", after(10*time.Millisecond, []string(nil), errDown))
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait with only an optional failure: %v", err)
		}
		if got := u.Value(); got.Name != "ada" {
			t.Errorf("user = %+v, want ada (an optional failure cancels nothing)", got)
		}
		if _, err := recs.Result(); !errors.Is(err, errDown) {
			t.Errorf("recommendations error = %v, want %v", err, errDown)
		}
		type failed struct {
			Branch   string
			Required bool
			Err      string
		}
		var got []failed
		for _, f := range g.Errors() {
			got = append(got, failed{f.Branch, f.Required, f.Err.Error()})
		}
		if diff := cmp.Diff([]failed{{"recommendations", false, "recommendations down"}}, got); diff != "" {
			t.Errorf("Errors (-want +got)\n%s", diff)
		}
	})
}

func TestGroupRequiredFailureCancelsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errNoUser := errors.New("no such user")
		g := compose.NewGroup(t.Context(), nil)
		compose.Go(g, "user", after(time.Second, user{}, errNoUser))
		slow := compose.Optional(g, "orders", after(time.Hour, 0, nil))
		start := time.Now()
		err := g.Wait()
		if d := time.Since(start); d != time.Second {
			t.Errorf("Wait took %v, want 1s (the failure cancels the slow branch)", d)
		}
		var ge *compose.GroupError
		if !errors.As(err, &ge) || !errors.Is(err, errNoUser) {
			t.Fatalf("Wait = %v, want a *GroupError wrapping %v", err, errNoUser)
		}
		if len(ge.Failed) != 2 || ge.Failed[0].Branch != "user" || !ge.Failed[0].Required ||
			ge.Failed[1].Branch != "orders" || !errors.Is(ge.Failed[1].Err, context.Canceled) {
			t.Errorf("Failed = %v, want user (required) then orders (cancelled)", ge.Failed)
		}
		if !errors.Is(slow.Err(), context.Canceled) {
			t.Errorf("orders err = %v, want context.Canceled", slow.Err())
		}
		var cause *compose.BranchError
		if !errors.As(context.Cause(g.Context()), &cause) || cause.Branch != "user" {
			t.Errorf("context.Cause = %v, want the user branch's error", context.Cause(g.Context()))
		}
	})
}

func TestGroupSharedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := compose.NewGroup(t.Context(), &compose.Options{Timeout: 2 * time.Second})
		fast := compose.Go(g, "fast", after(time.Second, "ok", nil))
		slow := compose.Optional(g, "slow", after(5*time.Second, "late", nil))
		start := time.Now()
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Wait took %v, want the 2s deadline", d)
		}
		if v, err := fast.Result(); v != "ok" || err != nil {
			t.Errorf("fast = %q, %v", v, err)
		}
		if _, err := slow.Result(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("slow err = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestGroupPanic(t *testing.T) {
	g := compose.NewGroup(t.Context(), nil)
	b := compose.Optional(g, "boom", func(context.Context) (int, error) { panic("kaput") })
	g.Wait()
	var pe *compose.PanicError
	if err := b.Err(); !errors.As(err, &pe) || pe.Value != "kaput" || len(pe.Stack) == 0 {
		t.Errorf("err = %v, want a *PanicError with the value and a stack", err)
	}
}

func TestGroupHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []compose.BranchInfo
		g := compose.NewGroup(t.Context(), &compose.Options{Hooks: compose.Hooks{OnBranch: func(bi compose.BranchInfo) {
			mu.Lock()
			defer mu.Unlock()
			bi.Err = nil
			got = append(got, bi)
		}}})
		compose.Go(g, "a", after(time.Second, 1, nil))
		compose.Optional(g, "b", after(2*time.Second, 2, errors.New("x")))
		g.Wait()
		want := []compose.BranchInfo{{Name: "a", Required: true, Duration: time.Second}, {Name: "b", Duration: 2 * time.Second}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("OnBranch (-want +got)\n%s", diff)
		}
	})
}

func TestAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errB := errors.New("b failed")
		results, errs := compose.All(t.Context(), 3*time.Second,
			after(time.Second, "a", nil),
			after(time.Second, "", errB),
			after(time.Hour, "c", nil),
		)
		if diff := cmp.Diff([]string{"a", "", ""}, results); diff != "" {
			t.Errorf("results (-want +got)\n%s", diff)
		}
		if len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], errB) || !errors.Is(errs[2], context.DeadlineExceeded) {
			t.Errorf("errs = %v, want [nil, %v, deadline exceeded]", errs, errB)
		}
		ints, errs := compose.All(t.Context(), 0, after(0, 1, nil), after(0, 2, nil))
		if errs != nil || !cmp.Equal([]int{1, 2}, ints) {
			t.Errorf("All succeeding = %v, %v; want [1 2], nil", ints, errs)
		}
	})
}

// sorted returns a sorted copy.
func sorted[T int | string](s []T) []T {
	c := append([]T(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}
