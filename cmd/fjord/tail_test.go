package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// signalWriter collects output and calls on after every write.
type signalWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	on  func(s string)
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	w.on(w.buf.String())
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestTail follows the log from the given point, appends one event once
// the subscription is live, and stops it (as Ctrl-C would) when the wanted
// number of events has been printed.
func TestTail(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []uint64 // positions printed
	}{
		{"all from start", []string{"--from", "start"}, []uint64{1, 2, 3, 4, 5, 6}},
		{"all from end", nil, []uint64{6}},
		{"all from position", []string{"--from", "4"}, []uint64{4, 5, 6}},
		{"category", []string{"--from", "start", "--category", "order"}, []uint64{1, 2, 4, 6}},
		{"types", []string{"--from", "start", "--type", "OrderPaid"}, []uint64{4, 6}},
		{"stream from start", []string{"--stream", "order-1", "--from", "start"}, []uint64{1, 4, 6}},
		{"stream from version", []string{"--stream", "order-1", "--from", "2"}, []uint64{4, 6}},
		{"stream from end", []string{"--stream", "order-1"}, []uint64{6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := seed(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			live := make(chan struct{})
			var once sync.Once
			stdout := &signalWriter{on: func(s string) {
				if strings.Count(s, "\n") == len(tt.want) {
					cancel()
				}
			}}
			stderr := &signalWriter{on: func(s string) {
				if strings.Contains(s, "caught up") {
					once.Do(func() { close(live) })
				}
			}}
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, append([]string{"tail", "--json"}, tt.args...), h.app(strings.NewReader(""), stdout, stderr, nil))
			}()
			select {
			case <-live:
			case err := <-done:
				t.Fatalf("tail ended before going live: %v\n%s", err, stderr.String())
			}
			h.mustRun("", "append", "order-1", "OrderPaid", `{"n":6}`)
			if err := <-done; err != nil {
				t.Fatalf("tail: %v\n%s", err, stderr.String())
			}
			var got []uint64
			for _, e := range decodeEvents(t, stdout.String()) {
				got = append(got, e.Position)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailUsageErrors(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"tail", "--from", "soon"}, `invalid --from "soon"`},
		{[]string{"tail", "--stream", "a-1", "--category", "a"}, "--category applies to $all only"},
		{[]string{"tail", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, errOut, err := h.run("", tt.args...)
			if err == nil || !strings.Contains(errOut, tt.want) {
				t.Errorf("got %v, stderr %q; want it to contain %q", err, errOut, tt.want)
			}
		})
	}
}
