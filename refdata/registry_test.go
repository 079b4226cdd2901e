package refdata_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/bundletest"
	"github.com/fjord-data/fjord/refdata/rollout"
)

func TestApply(t *testing.T) {
	reg := refdata.NewRegistry(nil)
	base := reg.Current()
	b := bundletest.Next(t, base, "2026.11.26.1", func(b *refdata.Bundle) {
		bundletest.SetRow(b, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
	}, refdata.DatasetColours)
	res, err := reg.Apply(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"colours"}, names(res.Applied)); d != "" {
		t.Errorf("applied (-want +got):\n%s", d)
	}
	s := reg.Current()
	if c, err := s.Colour("fjordblue"); err != nil || c.Hex() != "#1d4e89" {
		t.Errorf("new colour: %v %v", c, err)
	}
	if _, err := base.Colour("fjordblue"); !errors.Is(err, refdata.ErrNotFound) {
		t.Errorf("the old snapshot changed: %v", err)
	}
	if info, _ := s.Dataset("colours"); info.Version != "2026.11.26.1" {
		t.Errorf("colours version %s", info.Version)
	}
	if info, _ := s.Dataset("countries"); info.Version != base.Version() {
		t.Errorf("countries version %s, want it unchanged", info.Version)
	}
	if s.Version() != "2026.11.26.1" {
		t.Errorf("snapshot version %s", s.Version())
	}
}

func names(infos []refdata.DatasetInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

func TestApplyRejects(t *testing.T) {
	base := refdata.Default()
	v := "2026.11.26.1"
	tests := []struct {
		name string
		b    *refdata.Bundle
		want error
		msg  string
	}{
		{"not newer", bundletest.Next(t, base, base.Version(), nil, refdata.DatasetColours), refdata.ErrStale, "not newer"},
		{"older dataset", bundletest.Next(t, base, v, func(b *refdata.Bundle) { b.Tables[0].Version = "2020.1.1" }, refdata.DatasetColours),
			refdata.ErrStale, "older than the current"},
		{"same version, other rows", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			b.Tables[0].Version = base.Version()
			bundletest.SetRow(b, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
		}, refdata.DatasetColours), refdata.ErrInvalid, "differs from the current"},
		{"removed without tombstone", bundletest.Next(t, base, v, func(b *refdata.Bundle) { b.Tables[0].Rows = b.Tables[0].Rows[1:] }, refdata.DatasetColours),
			refdata.ErrInvalid, `removes "aliceblue" without a tombstone`},
		{"tombstone for a kept row", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			b.Tables = append(b.Tables, refdata.Table{Name: "tombstones", Rows: [][]string{{"colours", "aliceblue", "x"}}})
		}, refdata.DatasetColours), refdata.ErrInvalid, "tombstone for colours"},
		{"unknown currency", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			bundletest.SetRow(b, refdata.DatasetCountryCurrencies, []string{"AD", "QQQ", "2026-01-01", "", "true"})
		}, refdata.DatasetCountryCurrencies), refdata.ErrInvalid, "unknown currency QQQ"},
		{"unknown parent", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			bundletest.SetRow(b, refdata.DatasetSubdivisions, []string{"HR-01", "HR", "Zagrebačka županija", "County", "HR-77"})
		}, refdata.DatasetSubdivisions), refdata.ErrInvalid, "unknown parent HR-77"},
		{"currency removed under a country", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			tb := &b.Tables[0]
			for i, r := range tb.Rows {
				if r[0] == "EUR" {
					tb.Rows = append(tb.Rows[:i:i], tb.Rows[i+1:]...)
					break
				}
			}
			b.Tables = append(b.Tables, refdata.Table{Name: "tombstones", Rows: [][]string{{"currencies", "EUR", "gone"}}})
		}, refdata.DatasetCurrencies), refdata.ErrInvalid, "uses unknown currency EUR"},
		{"bad field", bundletest.Next(t, base, v, func(b *refdata.Bundle) {
			bundletest.SetRow(b, refdata.DatasetColours, []string{"fjordblue", "blue"})
		}, refdata.DatasetColours), refdata.ErrInvalid, `colour "fjordblue"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := refdata.NewRegistry(base)
			_, err := reg.Apply(tt.b)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.msg) {
				t.Errorf("got %v, want %v containing %q", err, tt.want, tt.msg)
			}
			if reg.Current() != base {
				t.Error("a rejected bundle changed the snapshot")
			}
		})
	}
}

func TestTombstone(t *testing.T) {
	reg := refdata.NewRegistry(nil)
	b := bundletest.Next(t, reg.Current(), "2026.11.26.1", func(b *refdata.Bundle) {
		b.Tables[0].Rows = b.Tables[0].Rows[1:] // aliceblue
		b.Tables = append(b.Tables, refdata.Table{Name: "tombstones", Rows: [][]string{{"colours", "aliceblue", "withdrawn"}}})
	}, refdata.DatasetColours)
	if _, err := reg.Apply(b); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Current().Colour("aliceblue"); !errors.Is(err, refdata.ErrNotFound) {
		t.Errorf("aliceblue: %v, want not found", err)
	}
}

func TestSignedApply(t *testing.T) {
	key := bundletest.Key(1)
	pub := key.Public().(ed25519.PublicKey)
	reg := refdata.NewRegistry(nil)
	base := reg.Current()
	b := bundletest.Next(t, base, "2026.11.26.1", nil, refdata.DatasetColours)
	unsigned, _ := b.Encode()
	if _, err := rollout.ApplySigned(reg, unsigned, pub); !errors.Is(err, refdata.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := rollout.ApplySigned(reg, bundletest.Signed(t, b, bundletest.Key(9)), pub); !errors.Is(err, refdata.ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := rollout.ApplySigned(reg, []byte("garbage"), pub); !errors.Is(err, refdata.ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
	if reg.Current() != base {
		t.Fatal("a rejected bundle changed the snapshot")
	}
	if _, err := rollout.ApplySigned(reg, bundletest.Signed(t, b, key), pub); err != nil {
		t.Fatal(err)
	}
}

func TestPinAndRollback(t *testing.T) {
	reg := refdata.NewRegistry(nil)
	base := reg.Current()
	add := func(v, colour string) *refdata.Bundle {
		return bundletest.Next(t, reg.Current(), v, func(b *refdata.Bundle) {
			bundletest.SetRow(b, refdata.DatasetColours, []string{colour, "#010203"})
		}, refdata.DatasetColours, refdata.DatasetZones)
	}
	if _, err := reg.Apply(add("2026.11.26.1", "one")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Pin(refdata.DatasetColours); err != nil {
		t.Fatal(err)
	}
	res, err := reg.Apply(add("2026.11.26.2", "two"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"colours"}, res.Held); d != "" {
		t.Errorf("held (-want +got):\n%s", d)
	}
	if _, err := reg.Current().Colour("two"); err == nil {
		t.Error("a pinned dataset changed")
	}
	old := bundletest.Next(t, base, "2026.11.26.3", nil, refdata.DatasetColours) // colours at 2026.11.26.3 > pin: held
	old.Tables[0].Version = "2026.11.25.9"                                       // older than the pin
	old.Normalize()
	if _, err := reg.Apply(old); !errors.Is(err, refdata.ErrStale) {
		t.Errorf("older than pinned: %v", err)
	}
	reg.Unpin(refdata.DatasetColours)
	if _, err := reg.Apply(add("2026.11.26.4", "four")); err != nil {
		t.Fatal(err)
	}
	info, err := reg.Rollback(refdata.DatasetColours)
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "2026.11.26.1" {
		t.Errorf("rolled back to %s, want 2026.11.26.1", info.Version)
	}
	if _, err := reg.Current().Colour("four"); err == nil {
		t.Error("rollback kept the newer colours")
	}
	if got := reg.Pins()[refdata.DatasetColours]; got != "2026.11.26.1" {
		t.Errorf("pin after rollback: %q", got)
	}
	if _, err := reg.Rollback(refdata.DatasetColours); err != nil { // to the compiled-in colours
		t.Fatal(err)
	}
	if _, err := reg.Rollback(refdata.DatasetColours); !errors.Is(err, refdata.ErrNoHistory) {
		t.Errorf("rollback past the compiled-in data: %v", err)
	}
	if d, _ := reg.Current().Dataset(refdata.DatasetColours); d.Version != base.Version() {
		t.Errorf("colours at %s, want the compiled-in %s", d.Version, base.Version())
	}
}

// TestSwapConsistency swaps snapshots continuously while readers look up
// several datasets through one snapshot: each reader must see one version
// throughout, never a mix. Run with -race.
func TestSwapConsistency(t *testing.T) {
	reg := refdata.NewRegistry(nil)
	const swaps = 60
	var bundles []*refdata.Bundle
	for i := 1; i <= swaps; i++ {
		v := fmt.Sprintf("2026.11.26.%d", i)
		bundles = append(bundles, bundletest.Next(t, reg.Current(), v, func(b *refdata.Bundle) {
			// the version is written into two datasets; a mix would show two numbers
			bundletest.SetRow(b, refdata.DatasetColours, []string{"marker", fmt.Sprintf("#0000%02x", i)})
			bundletest.SetRow(b, refdata.DatasetZones, []string{"HR", "Europe/Zagreb"})
			tb, _ := b.Table(refdata.DatasetZones)
			tb.Rows = append(tb.Rows, []string{"HR", fmt.Sprintf("Marker/%02d", i)})
			if i > 1 {
				tb.Rows = removeMarker(tb.Rows, i-1)
				b.Tables = append(b.Tables, refdata.Table{Name: "tombstones",
					Rows: [][]string{{"zones", fmt.Sprintf("HR Marker/%02d", i-1), "next"}}})
			}
		}, refdata.DatasetColours, refdata.DatasetZones))
		if _, err := reg.Apply(bundles[i-1]); err != nil {
			t.Fatalf("preparing bundle %d: %v", i, err)
		}
	}
	// Replay the same sequence on a fresh registry while readers run.
	reg = refdata.NewRegistry(nil)
	var done atomic.Bool
	var wg sync.WaitGroup
	var mixes, reads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				s := reg.Current()
				c, err := s.Colour("marker")
				zones, _ := s.TimeZones("HR")
				reads.Add(1)
				if err != nil {
					if len(zones) != 1 {
						mixes.Add(1)
					}
					continue
				}
				want := fmt.Sprintf("Marker/%02d", c.B)
				if len(zones) != 2 || zones[1] != want || s.Version() != fmt.Sprintf("2026.11.26.%d", c.B) {
					mixes.Add(1)
				}
			}
		}()
	}
	for _, b := range bundles {
		if _, err := reg.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	if mixes.Load() != 0 {
		t.Errorf("%d of %d reads saw a mix of versions", mixes.Load(), reads.Load())
	}
}

func removeMarker(rows [][]string, i int) [][]string {
	out := rows[:0:0]
	for _, r := range rows {
		if !(r[0] == "HR" && r[1] == fmt.Sprintf("Marker/%02d", i)) {
			out = append(out, r)
		}
	}
	return out
}
