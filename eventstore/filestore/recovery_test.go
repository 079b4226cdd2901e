package filestore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/filestore"
)

// frameAt is a frame found in a segment file by the test's own parser of
// the documented format: [u32 length][u32 CRC-32C][payload].
type frameAt struct {
	off, end int64
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "log", "*.seg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	return files
}

func frames(t *testing.T, file string) []frameAt {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []frameAt
	for off := int64(0); off+8 <= int64(len(b)); {
		n := int64(binary.BigEndian.Uint32(b[off:]))
		if n == 0 {
			break
		}
		out = append(out, frameAt{off, off + 8 + n})
		off += 8 + n
	}
	return out
}

func writeAt(t *testing.T, file string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, s driver.Backend) []driver.Record {
	t.Helper()
	got, err := collect(s.ReadAll(bg, driver.AllQuery{}))
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	return got
}

func positions(recs []driver.Record) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Position)
	}
	return out
}

func TestTornTail(t *testing.T) {
	// Three commits: positions 1-2, 3-4, 5-7. The damage hits the last one
	// (frames 5, 6 and 7, index 4 to 6), which was never acknowledged in
	// a real crash; recovery must drop it whole.
	tests := []struct {
		name   string
		damage func(t *testing.T, file string, fr []frameAt)
	}{
		{"last frame zeroed", func(t *testing.T, file string, fr []frameAt) {
			last := fr[len(fr)-1]
			writeAt(t, file, make([]byte, last.end-last.off), last.off)
		}},
		{"half of the last frame zeroed", func(t *testing.T, file string, fr []frameAt) {
			last := fr[len(fr)-1]
			mid := (last.off + last.end) / 2
			writeAt(t, file, make([]byte, last.end-mid), mid)
		}},
		{"last frame's header only", func(t *testing.T, file string, fr []frameAt) {
			last := fr[len(fr)-1]
			writeAt(t, file, make([]byte, last.end-last.off-8), last.off+8)
		}},
		{"file truncated in the last frame", func(t *testing.T, file string, fr []frameAt) {
			if err := os.Truncate(file, fr[len(fr)-1].end-3); err != nil {
				t.Fatal(err)
			}
		}},
		{"file truncated after the first frame of the last commit", func(t *testing.T, file string, fr []frameAt) {
			if err := os.Truncate(file, fr[4].end); err != nil {
				t.Fatal(err)
			}
		}},
		{"commit written partly: frames after the last commit end", func(t *testing.T, file string, fr []frameAt) {
			writeAt(t, file, make([]byte, fr[6].end-fr[5].off), fr[5].off)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, nil)
			commit(t, s, one("a-1", driver.Expected{}, ev(1, "T"), ev(2, "T")))
			commit(t, s, one("a-1", driver.Expected{}, ev(3, "T"), ev(4, "T")))
			commit(t, s, &driver.Batch{Appends: []driver.StreamAppend{
				{Stream: "a-1", Events: []driver.Event{ev(5, "T"), ev(6, "T")}},
				{Stream: "b-1", Events: []driver.Event{ev(7, "T")}},
			}})
			s.Close()
			// The index already knows the last commit; drop it so that the
			// state is that of a crash before the index batch persisted.
			os.RemoveAll(filepath.Join(dir, "index"))
			file := segmentFiles(t, dir)[0]
			fr := frames(t, file)
			if len(fr) != 7 {
				t.Fatalf("found %d frames, want 7", len(fr))
			}
			tt.damage(t, file, fr)

			s = open(t, dir, nil)
			if diff := cmp.Diff([]uint64{1, 2, 3, 4}, positions(readAll(t, s))); diff != "" {
				t.Errorf("positions after recovery (-want +got):\n%s", diff)
			}
			if _, err := s.StreamInfo(bg, "b-1"); !errors.Is(err, driver.ErrStreamNotFound) {
				t.Errorf("StreamInfo(b-1) = %v, want ErrStreamNotFound", err)
			}
			// The dropped events can be appended again, at the next positions.
			c := commit(t, s, one("a-1", driver.Expected{Kind: driver.ExpectExact, Version: 4}, ev(5, "T")))
			if diff := cmp.Diff([]driver.StreamCommitted{{Version: 5, Position: 5}}, c.Streams); diff != "" {
				t.Errorf("commit after recovery (-want +got):\n%s", diff)
			}
			s.Close()
			s = open(t, dir, nil)
			if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5}, positions(readAll(t, s))); diff != "" {
				t.Errorf("positions after second reopen (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCorruption(t *testing.T) {
	setup := func(t *testing.T) (dir, file string, fr []frameAt) {
		dir = t.TempDir()
		s := open(t, dir, nil)
		for i := uint64(1); i <= 5; i++ {
			commit(t, s, one("a-1", driver.Expected{}, ev(i, "T")))
		}
		s.Close()
		file = segmentFiles(t, dir)[0]
		fr = frames(t, file)
		writeAt(t, file, []byte{0xff}, fr[1].off+12) // a byte of position 2's payload
		return dir, file, fr
	}
	check := func(t *testing.T, err error, file string, off int64) {
		t.Helper()
		var ce *driver.CorruptionError
		if !errors.As(err, &ce) {
			t.Fatalf("error = %v, want a *driver.CorruptionError", err)
		}
		if ce.File != file || ce.Offset != off {
			t.Errorf("corruption reported at %s:%d, want %s:%d", ce.File, ce.Offset, file, off)
		}
		if !errors.Is(err, driver.ErrCorrupt) {
			t.Errorf("errors.Is(%v, ErrCorrupt) = false", err)
		}
	}
	t.Run("read reports file and offset", func(t *testing.T) {
		dir, file, fr := setup(t)
		s := open(t, dir, nil)
		got, err := collect(s.ReadAll(bg, driver.AllQuery{}))
		check(t, err, file, fr[1].off)
		if diff := cmp.Diff([]uint64{1}, positions(got)); diff != "" {
			t.Errorf("records before the corruption (-want +got):\n%s", diff)
		}
		_, err = collect(s.ReadStream(bg, driver.StreamQuery{Stream: "a-1", From: 2}))
		check(t, err, file, fr[1].off)
	})
	t.Run("open with index rebuild fails", func(t *testing.T) {
		dir, file, fr := setup(t)
		os.RemoveAll(filepath.Join(dir, "index"))
		_, err := filestore.Open(dir, nil)
		check(t, err, file, fr[1].off)
	})
}

func TestIndexRebuild(t *testing.T) {
	dir := t.TempDir()
	opts := &filestore.Options{SegmentSize: 4096}
	s := open(t, dir, opts)
	workload(t, s)
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, "index")); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, opts)
	compare(t, s)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func TestStaleIndexReindexesTail(t *testing.T) {
	dir, saved := t.TempDir(), t.TempDir()
	s := open(t, dir, nil)
	commit(t, s, one("order-1", driver.Expected{}, ev(1, "Placed")))
	s.Close()
	copyDir(t, filepath.Join(dir, "index"), filepath.Join(saved, "index"))
	s = open(t, dir, nil)
	commit(t, s, one("order-1", driver.Expected{}, ev(2, "Paid")))
	commit(t, s, one("order-2", driver.Expected{}, ev(3, "Paid")))
	s.Close()
	// Put back the index as it was after the first commit: the last two
	// commits are in the log only, as after a crash before the index
	// batch was flushed.
	os.RemoveAll(filepath.Join(dir, "index"))
	copyDir(t, filepath.Join(saved, "index"), filepath.Join(dir, "index"))
	s = open(t, dir, nil)
	got, err := collect(s.ReadAll(bg, driver.AllQuery{Filter: driver.Filter{EventTypes: []string{"Paid"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{2, 3}, positions(got)); diff != "" {
		t.Errorf("Paid events (-want +got):\n%s", diff)
	}
	info, err := s.StreamInfo(bg, "order-1")
	if err != nil || info.Version != 2 || info.Position != 2 {
		t.Errorf("StreamInfo(order-1) = %+v, %v; want version 2 at 2", info, err)
	}
	// Idempotency sees the re-indexed events.
	c, err := s.Commit(bg, one("order-2", driver.Expected{}, ev(3, "Paid")))
	if err != nil || !c.Duplicate || c.Streams[0].Position != 3 {
		t.Errorf("retry = %+v, %v; want the original result at 3", c, err)
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, nil)
	_, err := filestore.Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open = %v, want an error naming %s", err, dir)
	}
}

func TestDurableIdempotency(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	batch := &driver.Batch{Appends: []driver.StreamAppend{
		{Stream: "a-1", Events: []driver.Event{ev(1, "T"), ev(2, "T")}},
		{Stream: "b-1", Events: []driver.Event{ev(3, "T")}},
	}}
	want := commit(t, s, batch)
	commit(t, s, one("a-1", driver.Expected{}, ev(4, "T")))
	s.Close()
	s = open(t, dir, nil)
	got := commit(t, s, batch)
	want.Duplicate = true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retry after reopen (-want +got):\n%s", diff)
	}
	_, err := s.Commit(bg, one("a-1", driver.Expected{}, ev(1, "T"), ev(99, "T")))
	var ie *driver.IdempotencyError
	if !errors.As(err, &ie) {
		t.Errorf("partial retry: error = %v, want *driver.IdempotencyError", err)
	}
	// Two appends with the same IDs in one commit group: the second is a
	// duplicate of the first, whatever order the group takes them in.
	var wg sync.WaitGroup
	res := make([]driver.Committed, 8)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = commit(t, s, one("c-1", driver.Expected{}, ev(50, "T"), ev(51, "T")))
		}()
	}
	wg.Wait()
	dups := 0
	for _, c := range res {
		if c.Duplicate {
			dups++
		}
		if diff := cmp.Diff([]driver.StreamCommitted{{Version: 2, Position: 6}}, c.Streams); diff != "" {
			t.Errorf("concurrent retries (-want +got):\n%s", diff)
		}
	}
	if dups != len(res)-1 {
		t.Errorf("%d duplicates, want %d", dups, len(res)-1)
	}
}

func TestConflicts(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	commit(t, s, one("a-1", driver.Expected{}, ev(1, "T"), ev(2, "T")))
	tests := []struct {
		name    string
		stream  string
		exp     driver.Expected
		wantErr bool
	}{
		{"any", "a-1", driver.Expected{Kind: driver.ExpectAny}, false},
		{"exact right", "a-1", driver.Expected{Kind: driver.ExpectExact, Version: 3}, false},
		{"exact wrong", "a-1", driver.Expected{Kind: driver.ExpectExact, Version: 2}, true},
		{"no stream on existing", "a-1", driver.Expected{Kind: driver.ExpectNoStream}, true},
		{"no stream on new", "b-1", driver.Expected{Kind: driver.ExpectNoStream}, false},
		{"exists on new", "c-1", driver.Expected{Kind: driver.ExpectExists}, true},
		{"exists on existing", "b-1", driver.Expected{Kind: driver.ExpectExists}, false},
		{"exact 0 on new", "d-1", driver.Expected{Kind: driver.ExpectExact}, false},
	}
	n := uint64(100)
	for _, tt := range tests {
		n++
		_, err := s.Commit(bg, one(tt.stream, tt.exp, ev(n, "T")))
		var ce *driver.ConflictError
		if got := errors.As(err, &ce); got != tt.wantErr {
			t.Errorf("%s: error = %v, want conflict %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestMultiStreamAtomicity(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	commit(t, s, one("a-1", driver.Expected{}, ev(1, "T")))
	_, err := s.Commit(bg, &driver.Batch{Appends: []driver.StreamAppend{
		{Stream: "b-1", Events: []driver.Event{ev(2, "T")}},
		{Stream: "a-1", Expected: driver.Expected{Kind: driver.ExpectNoStream}, Events: []driver.Event{ev(3, "T")}},
	}})
	var ce *driver.ConflictError
	if !errors.As(err, &ce) || ce.Index != 1 || ce.Actual != 1 {
		t.Fatalf("error = %v, want a conflict on append 1 at version 1", err)
	}
	if diff := cmp.Diff([]uint64{1}, positions(readAll(t, s))); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if _, err := s.StreamInfo(bg, "b-1"); !errors.Is(err, driver.ErrStreamNotFound) {
		t.Errorf("StreamInfo(b-1) = %v, want ErrStreamNotFound", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := open(t, t.TempDir(), &filestore.Options{SegmentSize: 64 << 10})
	const writers, each = 16, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := uint64(w*each + i + 1)
				stream := []string{"x-1", "x-2", "y-1"}[i%3]
				if _, err := s.Commit(bg, one(stream, driver.Expected{}, ev(n, "T"), ev(n+1e6, "U"))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// A reader follows the head while writers run.
	var got []uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		var after uint64
		for after < writers*each*2 {
			h, err := s.WaitHead(bg, after)
			if err != nil {
				t.Error(err)
				return
			}
			recs, err := collect(s.ReadAll(bg, driver.AllQuery{From: after + 1, Until: h}))
			if err != nil {
				t.Error(err)
				return
			}
			got = append(got, positions(recs)...)
			after = h
		}
	}()
	wg.Wait()
	want := make([]uint64, writers*each*2)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("positions seen by the follower (-want +got):\n%s", diff)
	}
	for _, stream := range []string{"x-1", "x-2", "y-1"} {
		recs, err := collect(s.ReadStream(bg, driver.StreamQuery{Stream: stream}))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Version != uint64(i+1) || (i > 0 && r.Position <= recs[i-1].Position) {
				t.Fatalf("%s: record %d has version %d at %d", stream, i, r.Version, r.Position)
			}
			if i > 0 && r.Time.Before(recs[i-1].Time) {
				t.Fatalf("%s: commit time goes back at version %d", stream, r.Version)
			}
		}
	}
}

func TestCloseWakesWaitersAndRefuses(t *testing.T) {
	s, err := filestore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := s.WaitHead(bg, 0)
		errc <- err
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, driver.ErrClosed) {
		t.Errorf("WaitHead after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Commit(bg, one("a-1", driver.Expected{}, ev(1, "T"))); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	if _, err := collect(s.ReadAll(bg, driver.AllQuery{})); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("ReadAll after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Head(bg); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Head after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.Commit(ctx, one("a-1", driver.Expected{}, ev(1, "T"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit = %v, want context.Canceled", err)
	}
	if h, _ := s.Head(bg); h != 0 {
		t.Errorf("head = %d after a canceled commit", h)
	}
	commit(t, s, one("a-1", driver.Expected{}, ev(2, "T"), ev(3, "T")))
	n := 0
	for _, err := range s.ReadAll(ctx, driver.AllQuery{}) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ReadAll = %v, want context.Canceled", err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("ReadAll yielded %d times, want 1", n)
	}
}
