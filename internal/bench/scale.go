package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/fjord-data/fjord/eventstore"
)

// scaleProbeEvents is how many events each append-throughput probe of
// scale appends, at most; smaller runs probe with a tenth of their events.
const scaleProbeEvents = 100_000

// scale checks the store at size, on one data directory:
//
//  1. appends a probe of single events from 64 writers to the empty store;
//  2. fills the store to p.events events over p.streams streams, 8 writers
//     appending up to 100 events at a time, each append to one stream;
//  3. appends the same probe to the full store;
//  4. closes the store, and times reopening it and reading its head;
//  5. measures memory after the fill and after the reopen.
//
// The result's rate and latencies are those of the full-store probe. It
// measures and does not judge: a backend whose data does not survive
// reopening (memstore) simply reports a different head.
func scale(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
	probe := p
	probe.events = min(scaleProbeEvents, max(p.events/10, 1))
	empty, err := appendLoad(ctx, s, probe, 64, 1)
	if err != nil {
		return Result{}, fmt.Errorf("appending to the empty store: %w", err)
	}
	fill, err := fillStore(ctx, s, p)
	if err != nil {
		return Result{}, err
	}
	var sc Scale
	// Append i of either load goes to stream i mod p.streams.
	sc.Streams, sc.FillEvents = min(max(empty.Ops, fill.Ops), p.streams), fill.Events
	sc.FillSeconds, sc.FillEventsPerSec = fill.Seconds, fill.EventsPerSec
	sc.FillRSSMB, sc.FillPeakRSSMB, sc.FillHeapMB, err = memory()
	if err != nil {
		return Result{}, err
	}
	r, err := appendLoad(ctx, s, probe, 64, 1)
	if err != nil {
		return Result{}, fmt.Errorf("appending to the full store: %w", err)
	}
	sc.EmptyEventsPerSec, sc.FullEventsPerSec = empty.EventsPerSec, r.EventsPerSec
	if empty.EventsPerSec > 0 {
		sc.FullVsEmpty = r.EventsPerSec / empty.EventsPerSec
	}
	if err := reopen(ctx, s, p.dir, &sc); err != nil {
		return Result{}, err
	}
	sc.RSSMB, sc.PeakRSSMB, sc.HeapMB, err = memory()
	if err != nil {
		return Result{}, err
	}
	r.Scale = sc
	return r, nil
}

// fillStore appends events until the store holds p.events, spread over
// p.streams streams: as many events per append (at most 100) as lets the
// appends reach every stream.
func fillStore(ctx context.Context, s *eventstore.Store, p params) (Result, error) {
	head, err := s.Head(ctx)
	if err != nil {
		return Result{}, err
	}
	fill := p
	fill.events = max(p.events-int(head), 0)
	perAppend := min(100, max(fill.events/p.streams, 1))
	r, err := appendLoad(ctx, s, fill, 8, perAppend)
	if err == nil {
		err = ctx.Err() // no point going on with a partial fill
	}
	if err != nil {
		return Result{}, fmt.Errorf("filling the store: %w", err)
	}
	return r, nil
}

// reopen closes s, the store open in dir, then times opening it again and
// reading its head. It records both heads in sc.
func reopen(ctx context.Context, s *eventstore.Store, dir *storeDir, sc *Scale) error {
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if err := dir.closeStore(); err != nil {
		return fmt.Errorf("closing the full store: %w", err)
	}
	start := time.Now()
	s, err = dir.openStore()
	if err != nil {
		return fmt.Errorf("reopening the store: %w", err)
	}
	again, err := s.Head(ctx)
	if err != nil {
		return fmt.Errorf("reading the head after reopening: %w", err)
	}
	sc.ReopenMs = ms(time.Since(start))
	sc.Head, sc.ReopenHead = uint64(head), uint64(again)
	return nil
}

// memory collects garbage, returning freed memory to the operating system,
// then reports the process's resident set and its peak (0 without
// /proc/self/status) and the Go heap in use, in MiB.
func memory() (rss, peak, heap float64, err error) {
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	heap = float64(m.HeapInuse) / (1 << 20)
	status, err := os.ReadFile("/proc/self/status")
	if os.IsNotExist(err) {
		return 0, 0, heap, nil
	}
	if err != nil {
		return 0, 0, 0, err
	}
	rssKiB, peakKiB, err := residentKiB(status)
	return float64(rssKiB) / 1024, float64(peakKiB) / 1024, heap, err
}

// residentKiB returns the VmRSS and VmHWM lines of a /proc/<pid>/status
// file, in KiB.
func residentKiB(status []byte) (rss, peak int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &peak
		default:
			continue
		}
		kib, ok := bytes.CutSuffix(bytes.TrimSpace(value), []byte(" kB"))
		if !ok {
			return 0, 0, fmt.Errorf("/proc/self/status: %s is %q, want a size in kB", name, value)
		}
		if *dst, err = strconv.ParseInt(string(kib), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/self/status: %s: %w", name, err)
		}
	}
	return rss, peak, sc.Err()
}
