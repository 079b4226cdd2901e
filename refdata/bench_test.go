package refdata_test

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/bundletest"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// sink keeps results alive. Benchmarks add a field of each result to a
// local and store that once: storing a whole Country into a global would
// measure the write barrier, not the lookup.
var sink int

func BenchmarkCountryAlpha2(b *testing.B) {
	reg := refdata.NewRegistry(nil)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c, err := reg.Current().Country("HR")
		if err != nil {
			b.Fatal(err)
		}
		n += c.Numeric
	}
	sink = n
}

// BenchmarkCountryAlpha2Swapping looks up while another goroutine swaps
// two snapshots as fast as it can.
func BenchmarkCountryAlpha2Swapping(b *testing.B) {
	reg := refdata.NewRegistry(nil)
	other, err := refdata.Validate(reg.Current(), bundletest.Next(b, reg.Current(), "2026.11.26.1", func(bu *refdata.Bundle) {
		bundletest.SetRow(bu, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
	}, refdata.DatasetColours))
	if err != nil {
		b.Fatal(err)
	}
	snaps := []*refdata.Snapshot{reg.Current(), other}
	var stop atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			reg.SwapForTest(snaps[i&1])
			swaps.Add(1)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		c, err := reg.Current().Country("HR")
		if err != nil {
			b.Fatal(err)
		}
		n += c.Numeric
	}
	b.StopTimer()
	sink = n
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(swaps.Load())/float64(b.N), "swaps/op")
}

func BenchmarkCountryByName(b *testing.B) {
	s := refdata.Default()
	for _, name := range []string{"Türkiye", "swaziland", "Bosnia and Herzegovina", "Côte d’Ivoire"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				c, err := s.CountryByName(name)
				if err != nil {
					b.Fatal(err)
				}
				n += c.Numeric
			}
			sink = n
		})
	}
}

// BenchmarkApplyFullBundle decodes, verifies, validates and swaps in a
// signed bundle that replaces every dataset (about 400 kB).
func BenchmarkApplyFullBundle(b *testing.B) {
	base := refdata.Default()
	key := bundletest.Key(1)
	pub := key.Public().(ed25519.PublicKey)
	bundle := bundletest.Next(b, base, "2026.11.26.1", func(bu *refdata.Bundle) {
		bundletest.SetRow(bu, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
	}, refdata.Datasets()...)
	data := bundletest.Signed(b, bundle, key)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		reg := refdata.NewRegistry(base)
		res, err := rollout.ApplySigned(reg, data, pub)
		if err != nil || len(res.Applied) != len(refdata.Datasets()) {
			b.Fatal(err, res)
		}
	}
}

// BenchmarkBuildCompiledIn is what the first call of Default costs:
// building a snapshot from the compiled-in bundle (decoded already).
func BenchmarkBuildCompiledIn(b *testing.B) {
	full := refdata.Default().Bundle()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := refdata.FromBundle(full); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleRegistry_Pin() {
	reg := refdata.NewRegistry(nil)
	info, _ := reg.Pin(refdata.DatasetCurrencies) // later bundles leave currencies alone
	fmt.Println(info.Name, info.Version)
	// Output: currencies 2026.11.25.1
}
