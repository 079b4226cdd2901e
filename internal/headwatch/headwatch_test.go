package headwatch

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h Head
		got := make(chan uint64)
		go func() {
			p, err := h.Wait(context.Background(), 0)
			if err != nil {
				t.Error(err)
			}
			got <- p
		}()
		synctest.Wait() // the waiter is blocked
		select {
		case p := <-got:
			t.Fatalf("Wait returned %d before the head moved", p)
		default:
		}
		h.Advance(3)
		if p := <-got; p != 3 {
			t.Fatalf("Wait returned %d, want 3", p)
		}
		if p, err := h.Wait(context.Background(), 2); p != 3 || err != nil {
			t.Fatalf("Wait(2) at head 3 = %d, %v; want 3 at once", p, err)
		}
	})
}

func TestWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h Head
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { _, err := h.Wait(ctx, 0); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
		}
		closed := errors.New("closed")
		go func() { _, err := h.Wait(context.Background(), 0); done <- err }()
		synctest.Wait()
		h.Close(closed)
		if err := <-done; err != closed {
			t.Fatalf("Wait after Close: %v, want %v", err, closed)
		}
	})
}

func TestRaise(t *testing.T) {
	var h Head
	h.Raise(5)
	h.Raise(3)
	if got := h.Load(); got != 5 {
		t.Fatalf("after Raise(5), Raise(3): head %d, want 5", got)
	}
}
