package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
)

// suite holds what every test needs: how to open a backend and the options.
type suite struct {
	open func(t *testing.T) driver.Backend
	opts Options
}

// store opens a fresh backend and returns a Store over it.
func (s *suite) store(t *testing.T) *eventstore.Store {
	t.Helper()
	return s.storeWith(t, nil)
}

// storeWith is store with Store options. Polling backends poll every 5ms so
// that subscriptions stay quick without a Watcher.
func (s *suite) storeWith(t *testing.T, o *eventstore.Options) *eventstore.Store {
	t.Helper()
	if !s.opts.NoLeakCheck {
		// Registered before open's cleanup, so it runs after it.
		ignore := goleak.IgnoreCurrent()
		t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	}
	b := s.open(t)
	if b == nil {
		t.Fatal("open returned a nil backend")
	}
	var eo eventstore.Options
	if o != nil {
		eo = *o
	}
	if eo.PollInterval <= 0 {
		eo.PollInterval = 5 * time.Millisecond
	}
	return eventstore.New(b, &eo)
}

// ctx is the subtest's context, bounded by Options.Timeout as a failure
// guard.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.opts.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// cmpOpts compare eventstore values: expected versions by value, and nil
// and empty byte slices as equal (backends may return either).
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b eventstore.ExpectedVersion) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

// ignoreTime leaves commit times out of a comparison of recorded events.
var ignoreTime = cmpopts.IgnoreFields(eventstore.RecordedEvent{}, "Time")

// event returns an event of type typ with a fresh ID and a small payload.
func event(typ string) eventstore.Event {
	id := uuid.New()
	return eventstore.Event{ID: id, Type: typ, Data: fmt.Appendf(nil, `{"id":%q}`, id)}
}

// events returns n events of type typ.
func events(typ string, n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = event(typ)
	}
	return out
}

// appendOK appends and fails the test on error.
func appendOK(t *testing.T, ctx context.Context, st *eventstore.Store, stream eventstore.StreamID, exp eventstore.ExpectedVersion, evs ...eventstore.Event) eventstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctx, stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, exp, len(evs), err)
	}
	return res
}

// collect drains a sequence, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// firstErr returns the first error a sequence yields, or nil.
func firstErr[T any](seq iter.Seq2[T, error]) error {
	_, err := collect(seq)
	return err
}

func readAll(t *testing.T, ctx context.Context, st *eventstore.Store, o eventstore.ReadAllOptions) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := collect(st.ReadAll(ctx, o))
	if err != nil {
		t.Fatalf("ReadAll(%+v): %v", o, err)
	}
	return recs
}

func readStream(t *testing.T, ctx context.Context, st *eventstore.Store, stream eventstore.StreamID, o eventstore.ReadStreamOptions) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := collect(st.ReadStream(ctx, stream, o))
	if err != nil {
		t.Fatalf("ReadStream(%q, %+v): %v", stream, o, err)
	}
	return recs
}

func head(t *testing.T, ctx context.Context, st *eventstore.Store) eventstore.Position {
	t.Helper()
	h, err := st.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// state is everything a store holds, to check that a failed call wrote
// nothing.
type state struct {
	Head   eventstore.Position
	Events []eventstore.RecordedEvent
}

func snapshot(t *testing.T, ctx context.Context, st *eventstore.Store) state {
	t.Helper()
	return state{Head: head(t, ctx, st), Events: readAll(t, ctx, st, eventstore.ReadAllOptions{})}
}

// checkUnchanged fails the test when the store differs from before.
func checkUnchanged(t *testing.T, ctx context.Context, st *eventstore.Store, before state, what string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshot(t, ctx, st), cmpOpts); diff != "" {
		t.Errorf("%s wrote something (-before +after):\n%s", what, diff)
	}
}

func positions(recs []eventstore.RecordedEvent) []eventstore.Position {
	out := make([]eventstore.Position, len(recs))
	for i, r := range recs {
		out[i] = r.Position
	}
	return out
}

func versions(recs []eventstore.RecordedEvent) []eventstore.Version {
	out := make([]eventstore.Version, len(recs))
	for i, r := range recs {
		out[i] = r.Version
	}
	return out
}

// span returns from, from+1, …, to (nil when to < from).
func span[T ~uint64](from, to T) []T {
	var out []T
	for p := from; p <= to && p >= from; p++ {
		out = append(out, p)
	}
	return out
}

// reverse returns s reversed, in a new slice.
func reverse[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// checkContiguous reports an error unless ps is from, from+1, ….
func checkContiguous(ps []eventstore.Position, from eventstore.Position) error {
	for i, p := range ps {
		if want := from + eventstore.Position(i); p != want {
			return fmt.Errorf("position %d at index %d, want %d (previous %v)", p, i, want, ps[max(0, i-3):i])
		}
	}
	return nil
}

// wantVersionError checks that err is a *VersionError with the given
// details that errors.Is ErrWrongVersion.
func wantVersionError(t *testing.T, err error, want eventstore.VersionError) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("err = %v, want errors.Is(err, ErrWrongVersion)", err)
	}
	var ve *eventstore.VersionError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %T %v, want a *VersionError", err, err)
	}
	if diff := cmp.Diff(want, *ve, cmpOpts); diff != "" {
		t.Errorf("VersionError (-want +got):\n%s", diff)
	}
}

// diffEvents is cmp.Diff(want, got, cmpOpts) for recorded events, with a
// fast path for the common equal case (cmp is slow on thousands of events).
func diffEvents(want, got []eventstore.RecordedEvent) string {
	if len(want) == len(got) {
		equal := true
		for i := range want {
			if !sameEvent(&want[i], &got[i]) {
				equal = false
				break
			}
		}
		if equal {
			return ""
		}
	}
	return cmp.Diff(want, got, cmpOpts)
}

func sameEvent(a, b *eventstore.RecordedEvent) bool {
	return a.ID == b.ID && a.Type == b.Type && a.ContentType == b.ContentType &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata) &&
		a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID &&
		a.Stream == b.Stream && a.Version == b.Version && a.Position == b.Position && a.Time.Equal(b.Time)
}
