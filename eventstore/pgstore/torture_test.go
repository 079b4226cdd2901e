package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/pgstore"
)

var errRolledBack = errors.New("rolled back on purpose by the test")

// tortureLog is what the writers of the torture test know for sure.
type tortureLog struct {
	mu        sync.Mutex
	acked     map[uuid.UUID]string // event → its append's key
	batches   map[string][]uuid.UUID
	failed    map[uuid.UUID]bool // events of appends that failed: never committed
	conflicts int
	rollbacks int
}

// TestTortureGaplessAcrossNodes runs writers on several Stores, each on
// its own pool (standing in for nodes), on one schema: appends of 1 to 12
// events, single- and multi-stream, some failing their expected version on
// purpose and some whose transaction the test rolls back. Subscribers on
// every node must each see every committed event exactly once, in position
// order, with no hole, and no event of a failed append.
//
// Against the classic design (a bigserial position, one transaction per
// append, subscribers reading position > last) it fails: positions taken
// by rolled-back and conflicting transactions are holes, and a subscriber
// that read position N+1 before a slower transaction committed N never
// sees N.
func TestTortureGaplessAcrossNodes(t *testing.T) {
	dsn(t)
	runTorture(t, 3, 4, openTortureNode)
}

// TestTortureGaplessOneNode is the torture test on one node, which commits
// optimistically, several transactions at once: when the hook fails one,
// the transaction after it must fail its head check and be written again.
func TestTortureGaplessOneNode(t *testing.T) {
	dsn(t)
	runTorture(t, 1, 12, openTortureNode)
}

// openTortureNode opens a node on its own pool whose commit transactions
// are rolled back, every fifth, on purpose.
func openTortureNode(t *testing.T, schema string) *eventstore.Store {
	b := open(t, newPool(t), &pgstore.Options{Schema: schema, PollInterval: 20 * time.Millisecond})
	var groups atomic.Int64
	pgstore.SetBeforeCommit(b, func(context.Context, *pgx.Conn) error {
		if groups.Add(1)%5 == 0 {
			return errRolledBack
		}
		return nil
	})
	return eventstore.New(b, nil)
}

// runTorture runs the torture test on nodes that openNode opens on schema,
// with writersPerNode writers and a subscriber on each.
func runTorture(t *testing.T, nodes, writersPerNode int, openNode func(t *testing.T, schema string) *eventstore.Store) {
	const subscribersPerNode = 1
	appends := 150
	if testing.Short() {
		appends = 40
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	schema := newSchema(t, newPool(t))
	stores := make([]*eventstore.Store, nodes)
	for i := range stores {
		stores[i] = openNode(t, schema)
	}

	subs := make([]*tortureSubscriber, nodes*subscribersPerNode)
	var subsWG sync.WaitGroup
	for i := range subs {
		subs[i] = &tortureSubscriber{ready: make(chan struct{})}
		subsWG.Go(func() { subs[i].run(ctx, stores[i%nodes]) })
		<-subs[i].ready
	}

	log := &tortureLog{acked: map[uuid.UUID]string{}, batches: map[string][]uuid.UUID{}, failed: map[uuid.UUID]bool{}}
	var writers sync.WaitGroup
	for w := range nodes * writersPerNode {
		writers.Go(func() {
			if err := tortureWriter(ctx, stores[w%nodes], w, appends, log); err != nil {
				t.Error(err)
				cancel()
			}
		})
	}
	writers.Wait()
	done := eventstore.Event{ID: uuid.New(), Type: "Done"}
	for {
		_, err := stores[0].Append(ctx, "done-1", eventstore.NoStream, done)
		if errors.Is(err, errRolledBack) {
			continue // by the test's hook: again
		}
		if err != nil {
			t.Fatalf("appending the last event: %v", err)
		}
		break
	}
	subsWG.Wait()
	if t.Failed() {
		return
	}
	all, err := collectAll(ctx, stores[len(stores)-1])
	if err != nil {
		t.Fatal(err)
	}
	checkTorture(t, log, all, done.ID)
	for i, s := range subs {
		if s.err != nil {
			t.Errorf("subscriber %d: %v", i, s.err)
			continue
		}
		if len(s.got) != len(all) {
			t.Errorf("subscriber %d got %d events, $all has %d", i, len(s.got), len(all))
		}
		for j := range min(len(s.got), len(all)) {
			if s.got[j].ID != all[j].ID || s.got[j].Position != all[j].Position {
				t.Errorf("subscriber %d: delivery %d is %s at %d, $all has %s at %d", i, j, s.got[j].ID, s.got[j].Position, all[j].ID, all[j].Position)
				break
			}
		}
	}
	t.Logf("%d events committed; %d appends conflicted and %d were rolled back on purpose", len(all), log.conflicts, log.rollbacks)
	if log.conflicts == 0 || log.rollbacks == 0 {
		t.Errorf("the test did not exercise failures: %d conflicts, %d rollbacks", log.conflicts, log.rollbacks)
	}
}

// tortureWriter appends n times to its own stream (tracking its version),
// every fifth append expecting a wrong version on purpose and every third a
// multi-stream append that puts part of it in a shared stream.
func tortureWriter(ctx context.Context, st *eventstore.Store, w, n int, log *tortureLog) error {
	own := eventstore.StreamID(fmt.Sprintf("torture-%d", w))
	var v eventstore.Version
	rng := rand.New(rand.NewPCG(uint64(w), 42))
	for a := range n {
		key := fmt.Sprintf("w%d-a%d", w, a)
		evs := make([]eventstore.Event, 1+rng.IntN(12))
		for j := range evs {
			evs[j] = eventstore.Event{ID: uuid.New(), Type: "Tortured", Data: []byte(`{}`), CorrelationID: key}
		}
		expected := eventstore.Exact(v)
		wantConflict := a%5 == 4
		if wantConflict {
			expected = eventstore.Exact(v + 1)
		}
		var err error
		ownEvents := len(evs)
		if a%3 == 2 && len(evs) > 1 {
			ownEvents = 1
			_, err = st.AppendMulti(ctx,
				eventstore.StreamAppend{Stream: own, Expected: expected, Events: evs[:1]},
				eventstore.StreamAppend{Stream: eventstore.StreamID(fmt.Sprintf("shared-%d", a%4)), Expected: eventstore.Any, Events: evs[1:]})
		} else {
			_, err = st.Append(ctx, own, expected, evs...)
		}
		log.mu.Lock()
		switch {
		case err == nil && !wantConflict:
			v += eventstore.Version(ownEvents)
			for _, e := range evs {
				log.acked[e.ID] = key
				log.batches[key] = append(log.batches[key], e.ID)
			}
		case errors.Is(err, eventstore.ErrWrongVersion) && wantConflict:
			log.conflicts++
		case errors.Is(err, errRolledBack):
			log.rollbacks++
		default:
			log.mu.Unlock()
			return fmt.Errorf("writer %d, append %d (expected %v): %v", w, a, expected, err)
		}
		if err != nil {
			for _, e := range evs {
				log.failed[e.ID] = true
			}
		}
		log.mu.Unlock()
	}
	return nil
}

// checkTorture checks $all against what the writers know: positions 1..n,
// every acknowledged event exactly once, no event of a failed append, and
// the events of each append at consecutive positions.
func checkTorture(t *testing.T, log *tortureLog, all []eventstore.RecordedEvent, done uuid.UUID) {
	t.Helper()
	at := map[uuid.UUID]eventstore.Position{}
	for i, e := range all {
		if want := eventstore.Position(i + 1); e.Position != want {
			t.Fatalf("$all: position %d at index %d, want %d (a hole)", e.Position, i, want)
		}
		if _, dup := at[e.ID]; dup {
			t.Errorf("$all: event %s twice", e.ID)
		}
		at[e.ID] = e.Position
		_, acked := log.acked[e.ID]
		switch {
		case log.failed[e.ID]:
			t.Errorf("$all: event %s of a failed append at position %d", e.ID, e.Position)
		case !acked && e.ID != done:
			t.Errorf("$all: event %s at position %d was never acknowledged", e.ID, e.Position)
		}
	}
	for key, ids := range log.batches {
		first, ok := at[ids[0]]
		for j, id := range ids {
			if p, found := at[id]; !found || !ok || p != first+eventstore.Position(j) {
				t.Errorf("append %s: event %d is at position %d (found %v), want %d", key, j, p, found, first+eventstore.Position(j))
				break
			}
		}
	}
}

func collectAll(ctx context.Context, st *eventstore.Store) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	for e, err := range st.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// tortureSubscriber follows $all from the start until the Done event.
type tortureSubscriber struct {
	ready chan struct{} // closed once caught up (live), or on failure
	once  sync.Once
	got   []eventstore.RecordedEvent
	err   error
}

func (s *tortureSubscriber) run(ctx context.Context, st *eventstore.Store) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	markReady := func() { s.once.Do(func() { close(s.ready) }) }
	defer markReady()
	for d, err := range st.Subscribe(ctx, eventstore.SubscribeOptions{PageSize: 64}) {
		switch {
		case err != nil:
			s.err = err
			return
		case d.Kind == eventstore.DeliveredCaughtUp:
			markReady()
		case d.Kind == eventstore.DeliveredEvent:
			if want := eventstore.Position(len(s.got) + 1); d.Position != want {
				s.err = fmt.Errorf("delivered position %d, want %d", d.Position, want)
				return
			}
			s.got = append(s.got, d.Event)
			if d.Event.Type == "Done" {
				return
			}
		}
	}
}
