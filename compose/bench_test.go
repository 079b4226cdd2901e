package compose_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fjord-data/fjord/compose"
)

// benchBatch is a batch function that counts its calls.
func benchBatch(calls *atomic.Int64) compose.BatchFunc[int, int] {
	return func(ctx context.Context, keys []int) (map[int]int, error) {
		calls.Add(1)
		m := make(map[int]int, len(keys))
		for _, k := range keys {
			m[k] = k * 2
		}
		return m, nil
	}
}

// BenchmarkLoader100Over37 is the proof as a benchmark: one op is
// 100 lookups over 37 keys through a fresh (request-scoped) Loader with
// MaxBatch 10; batches/op reports ⌈37/10⌉ = 4.
func BenchmarkLoader100Over37(b *testing.B) {
	keys := make([]int, 100)
	for i := range keys {
		keys[i] = i % 37
	}
	b.Run("LoadMany", func(b *testing.B) {
		var calls atomic.Int64
		b.ReportAllocs()
		for b.Loop() {
			l := compose.NewLoader(benchBatch(&calls), &compose.LoaderOptions{MaxBatch: 10})
			if _, errs := l.LoadMany(context.Background(), keys); errs != nil {
				b.Fatal(errs)
			}
			l.Close()
		}
		b.ReportMetric(float64(calls.Load())/float64(b.N), "batches/op")
	})
	b.Run("Load-100-goroutines", func(b *testing.B) {
		var calls atomic.Int64
		b.ReportAllocs()
		for b.Loop() {
			l := compose.NewLoader(benchBatch(&calls), &compose.LoaderOptions{MaxBatch: 10, Wait: 100 * time.Microsecond, Cache: true})
			var wg sync.WaitGroup
			for _, k := range keys {
				wg.Go(func() {
					if _, err := l.Load(context.Background(), k); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			l.Close()
		}
		b.ReportMetric(float64(calls.Load())/float64(b.N), "batches/op")
	})
}

// BenchmarkGroup fans out to n branches that return at once.
func BenchmarkGroup(b *testing.B) {
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprint("branches=", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g := compose.NewGroup(context.Background(), &compose.Options{Timeout: time.Second})
				for i := range n {
					compose.Go(g, "b", func(context.Context) (int, error) { return i, nil })
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
