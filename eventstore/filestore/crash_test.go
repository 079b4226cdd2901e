package filestore_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/filestore"
)

// The crash test runs a child process (this test binary, re-executed) that
// appends under load from several writers and prints each acknowledgement;
// the parent kills it with SIGKILL at a random point, reopens the store and
// checks that every acknowledged event is there with its position and
// version, that positions are gapless, that every commit is whole, and that
// idempotent retries still return their original result. Set
// FJORD_CRASH_CYCLES for more cycles than the default 20.

const (
	crashWriters  = 8
	envCrashDir   = "FJORD_CRASH_CHILD_DIR"
	envCrashCycle = "FJORD_CRASH_CHILD_CYCLE"
)

// crashKey identifies one append of the child: the cycle, the writer and
// its sequence number. Every event ID encodes its append's key, its index
// in the append and the append's event count.
type crashKey struct{ cycle, writer, seq uint32 }

func crashID(k crashKey, i, n int) uuid.UUID {
	var id uuid.UUID
	id[0] = 0xC7
	binary.BigEndian.PutUint32(id[1:], k.cycle)
	binary.BigEndian.PutUint32(id[5:], k.writer)
	binary.BigEndian.PutUint32(id[9:], k.seq)
	id[13], id[14] = byte(i), byte(n)
	return id
}

func parseCrashID(id uuid.UUID) (k crashKey, i, n int, ok bool) {
	if id[0] != 0xC7 {
		return k, 0, 0, false
	}
	k = crashKey{binary.BigEndian.Uint32(id[1:]), binary.BigEndian.Uint32(id[5:]), binary.BigEndian.Uint32(id[9:])}
	return k, int(id[13]), int(id[14]), true
}

// crashAppend is what writer w does at step seq of a cycle: 1–3 events to
// its own stream, and every fifth time one more event to a shared stream in
// the same commit.
func crashAppend(k crashKey, version eventstore.Version) []eventstore.StreamAppend {
	own := 1 + int(k.seq%3)
	n := own
	multi := k.seq%5 == 4
	if multi {
		n++
	}
	data := []byte(fmt.Sprintf(`{"cycle":%d,"writer":%d,"seq":%d,"pad":%q}`, k.cycle, k.writer, k.seq, strings.Repeat("x", 180)))
	ev := func(i int) eventstore.Event {
		return eventstore.Event{ID: crashID(k, i, n), Type: "CrashTested", Data: data}
	}
	a := eventstore.StreamAppend{Stream: eventstore.StreamID(fmt.Sprintf("crash%d-%d", k.writer, k.cycle)), Expected: eventstore.Exact(version)}
	for i := range own {
		a.Events = append(a.Events, ev(i))
	}
	appends := []eventstore.StreamAppend{a}
	if multi {
		appends = append(appends, eventstore.StreamAppend{Stream: eventstore.StreamID(fmt.Sprintf("shared-%d", k.cycle)),
			Expected: eventstore.Any, Events: []eventstore.Event{ev(own)}})
	}
	return appends
}

// crashAck is one acknowledged stream part of an append, as the child
// printed it: "ack cycle writer seq part stream version position".
type crashAck struct {
	key      crashKey
	part     int
	stream   eventstore.StreamID
	version  eventstore.Version
	position eventstore.Position
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(envCrashDir); dir != "" {
		cycle, _ := strconv.Atoi(os.Getenv(envCrashCycle))
		crashChild(dir, uint32(cycle))
		return
	}
	goleak.VerifyTestMain(m)
}

// crashChild appends until it is killed.
func crashChild(dir string, cycle uint32) {
	b, err := filestore.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(3)
	}
	s := eventstore.New(b, nil)
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	for w := range uint32(crashWriters) {
		go func() {
			var version eventstore.Version
			for seq := uint32(0); ; seq++ {
				k := crashKey{cycle, w, seq}
				appends := crashAppend(k, version)
				res, err := s.AppendMulti(context.Background(), appends...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child: append:", err)
					os.Exit(3)
				}
				version = res[0].Version
				mu.Lock()
				for i, r := range res {
					fmt.Fprintf(out, "ack %d %d %d %d %s %d %d\n", cycle, w, seq, i, appends[i].Stream, r.Version, r.Position)
				}
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

func crashCycles(t *testing.T) int {
	if v := os.Getenv("FJORD_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FJORD_CRASH_CYCLES=%q: want a positive number", v)
		}
		return n
	}
	if testing.Short() {
		return 5
	}
	return 20
}

func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	acked := map[crashKey][]crashAck{}
	cycles := crashCycles(t)
	for cycle := range uint32(cycles) {
		// Kill after a random number of acknowledgements; now and then
		// at once, while the child starts, opens or recovers.
		killAfter := rng.IntN(2000)
		if rng.IntN(8) == 0 {
			killAfter = 0
		}
		for _, a := range runCrashChild(t, dir, cycle, killAfter) {
			acked[a.key] = append(acked[a.key], a)
		}
		verifyAfterCrash(t, dir, cycle, acked, rng)
	}
}

// runCrashChild starts a child and kills it with SIGKILL after killAfter
// acknowledged appends; it returns the acknowledgements read.
func runCrashChild(t *testing.T, dir string, cycle uint32, killAfter int) []crashAck {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashCycle+"="+strconv.Itoa(int(cycle)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []crashAck
	appends := 0
	sc := bufio.NewScanner(stdout)
	for killAfter > 0 && sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			continue
		}
		var a crashAck
		_, err := fmt.Sscanf(line, "ack %d %d %d %d %s %d %d", &a.key.cycle, &a.key.writer, &a.key.seq, &a.part, &a.stream, &a.version, &a.position)
		if err != nil {
			t.Fatalf("cycle %d: child printed %q: %v", cycle, line, err)
		}
		acks = append(acks, a)
		if a.part == 0 {
			appends++
		}
		if appends >= killAfter {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Keep reading: lines the child printed before it died are acknowledged too.
	for sc.Scan() {
		var a crashAck
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %d %d %s %d %d", &a.key.cycle, &a.key.writer, &a.key.seq, &a.part, &a.stream, &a.version, &a.position); err == nil {
			acks = append(acks, a)
		}
	}
	err = cmd.Wait()
	if !strings.Contains(fmt.Sprint(err), "killed") {
		t.Fatalf("cycle %d: child ended with %v before it was killed; stderr:\n%s", cycle, err, stderr.String())
	}
	return acks
}

func verifyAfterCrash(t *testing.T, dir string, cycle uint32, acked map[crashKey][]crashAck, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	b, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatalf("cycle %d: reopen after SIGKILL: %v", cycle, err)
	}
	s := eventstore.New(b, nil)
	defer s.Close()

	// Gapless positions, contiguous stream versions, whole commits.
	type seen struct {
		first eventstore.Position
		count int
		n     int
	}
	commits := map[crashKey]*seen{}
	versions := map[eventstore.StreamID]eventstore.Version{}
	byPosition := map[eventstore.Position]eventstore.RecordedEvent{}
	var want eventstore.Position = 1
	for e, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
		if err != nil {
			t.Fatalf("cycle %d: read $all: %v", cycle, err)
		}
		if e.Position != want {
			t.Fatalf("cycle %d: position %d follows %d", cycle, e.Position, want-1)
		}
		want++
		if e.Version != versions[e.Stream]+1 {
			t.Fatalf("cycle %d: stream %s: version %d follows %d", cycle, e.Stream, e.Version, versions[e.Stream])
		}
		versions[e.Stream] = e.Version
		byPosition[e.Position] = e
		k, i, n, ok := parseCrashID(e.ID)
		if !ok {
			t.Fatalf("cycle %d: position %d has a foreign event ID %s", cycle, e.Position, e.ID)
		}
		c := commits[k]
		if c == nil {
			c = &seen{first: e.Position, n: n}
			commits[k] = c
		}
		if e.Position != c.first+eventstore.Position(i) || c.n != n {
			t.Fatalf("cycle %d: event %d of append %+v at position %d; the append began at %d", cycle, i, k, e.Position, c.first)
		}
		c.count++
	}
	head, err := s.Head(ctx)
	if err != nil || head != want-1 {
		t.Fatalf("cycle %d: head %d, %v; read $all up to %d", cycle, head, err, want-1)
	}
	t.Logf("cycle %d: %d events, %d appends acknowledged so far", cycle, head, len(acked))
	for k, c := range commits {
		if c.count != c.n {
			t.Fatalf("cycle %d: append %+v is torn: %d of its %d events survived", cycle, k, c.count, c.n)
		}
	}

	// Every acknowledged event is where its acknowledgement said.
	var keys []crashKey
	for k, acks := range acked {
		keys = append(keys, k)
		for _, a := range acks {
			e, ok := byPosition[a.position]
			if !ok {
				t.Fatalf("cycle %d: acknowledged append %+v (stream %s version %d position %d) is missing", cycle, k, a.stream, a.version, a.position)
			}
			if e.Stream != a.stream || e.Version != a.version {
				t.Fatalf("cycle %d: position %d holds %s@%d, acknowledged as %s@%d", cycle, a.position, e.Stream, e.Version, a.stream, a.version)
			}
			if got, _, _, _ := parseCrashID(e.ID); got != k {
				t.Fatalf("cycle %d: position %d holds an event of append %+v, acknowledged for %+v", cycle, a.position, got, k)
			}
		}
	}

	// Idempotent retries of acknowledged appends return their original result.
	for range min(5, len(keys)) {
		k := keys[rng.IntN(len(keys))]
		acks := acked[k]
		res, err := s.AppendMulti(ctx, crashAppend(k, acks[0].version-eventstore.Version(1+k.seq%3))...)
		if err != nil {
			t.Fatalf("cycle %d: retrying append %+v: %v", cycle, k, err)
		}
		for i, a := range acks {
			if !res[i].Duplicate || res[i].Version != a.version || res[i].Position != a.position {
				t.Fatalf("cycle %d: retrying append %+v part %d: got %+v, want the original version %d position %d", cycle, k, i, res[i], a.version, a.position)
			}
		}
	}
}
