package filestore_test

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/filestore"
)

var payload256 = make([]byte, 256)

func benchEvent(n uint64) driver.Event {
	return driver.Event{ID: id(n), Type: "Happened", ContentType: "application/json", Data: payload256}
}

// BenchmarkAppendSingle64Writers: 64 goroutines append one 256-byte event
// each per commit, over 100k streams.
func BenchmarkAppendSingle64Writers(b *testing.B) {
	s := open(b, b.TempDir(), nil)
	var n atomic.Uint64
	var wg sync.WaitGroup
	per := b.N/64 + 1
	b.ResetTimer()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				k := n.Add(1)
				stream := fmt.Sprintf("s-%d", k%100_000)
				if _, err := s.Commit(bg, one(stream, driver.Expected{}, benchEvent(k))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendBatch100: 8 goroutines append 100 events per commit.
func BenchmarkAppendBatch100(b *testing.B) {
	s := open(b, b.TempDir(), benchOpts)
	var n atomic.Uint64
	var wg sync.WaitGroup
	per := b.N/8 + 1
	b.ResetTimer()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evs := make([]driver.Event, 100)
			for i := range per {
				for j := range evs {
					evs[j] = benchEvent(n.Add(1))
				}
				stream := fmt.Sprintf("s-%d-%d", w, i%1000)
				if _, err := s.Commit(bg, one(stream, driver.Expected{}, evs...)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendLatency: one writer, one event per commit; reports p50
// and p99 commit latency.
func BenchmarkAppendLatency(b *testing.B) {
	s := open(b, b.TempDir(), nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := s.Commit(bg, one(fmt.Sprintf("s-%d", i%1000), driver.Expected{}, benchEvent(uint64(i+1)))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkReadAll reads $all forwards from a store of 1M 256-byte events;
// b.N counts events.
func BenchmarkReadAll(b *testing.B) {
	const total = 1_000_000
	s := open(b, b.TempDir(), nil)
	evs := make([]driver.Event, 1000)
	for k := uint64(0); k < total; k += 1000 {
		for j := range evs {
			evs[j] = benchEvent(k + uint64(j) + 1)
		}
		if _, err := s.Commit(bg, one(fmt.Sprintf("s-%d", k%1000), driver.Expected{}, evs...)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	read := 0
	for read < b.N {
		for _, err := range s.ReadAll(bg, driver.AllQuery{Limit: b.N - read}) {
			if err != nil {
				b.Fatal(err)
			}
			read++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}

var benchOpts = &filestore.Options{}

// BenchmarkReadAllPaged reads $all through eventstore.Store in pages of
// 512, as catch-up subscriptions and `fjord bench eventstore --scenario
// read-all` do.
func BenchmarkReadAllPaged(b *testing.B) {
	const total = 1_000_000
	fs := open(b, b.TempDir(), nil)
	evs := make([]driver.Event, 1000)
	for k := uint64(0); k < total; k += 1000 {
		for j := range evs {
			evs[j] = benchEvent(k + uint64(j) + 1)
		}
		if _, err := fs.Commit(bg, one(fmt.Sprintf("s-%d", k%1000), driver.Expected{}, evs...)); err != nil {
			b.Fatal(err)
		}
	}
	s := eventstore.New(fs, nil)
	b.ResetTimer()
	read := 0
	from := eventstore.Position(1)
	for read < b.N {
		n := 0
		for e, err := range s.ReadAll(bg, eventstore.ReadAllOptions{From: from, Limit: 512}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
			from = e.Position + 1
		}
		read += n
		if n < 512 {
			from = 1
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}
