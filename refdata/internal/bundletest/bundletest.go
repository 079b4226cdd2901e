// Package bundletest builds reference-data bundles for the tests of refdata
// and its roll-out.
package bundletest

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// Key is a fixed key, so that test bundles are reproducible.
func Key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// Next returns a bundle of version v carrying the named datasets of
// base at version v, after edit.
func Next(t testing.TB, base *refdata.Snapshot, v string, edit func(b *refdata.Bundle), datasets ...string) *refdata.Bundle {
	t.Helper()
	full := base.Bundle()
	b := &refdata.Bundle{Version: v, Created: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	for _, tb := range full.Tables {
		for _, d := range datasets {
			if tb.Name == d {
				tb.Version = v
				b.Tables = append(b.Tables, tb)
			}
		}
	}
	if edit != nil {
		edit(b)
	}
	b.Normalize()
	return b
}

// Signed signs b with key and encodes it.
func Signed(t testing.TB, b *refdata.Bundle, key ed25519.PrivateKey) []byte {
	t.Helper()
	if err := rollout.Sign(b, key); err != nil {
		t.Fatal(err)
	}
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// SetRow replaces the row with row's key, or adds row.
func SetRow(b *refdata.Bundle, dataset string, row []string) {
	tb, _ := b.Table(dataset)
	keyCols := map[string]int{refdata.DatasetCountryCurrencies: 3, refdata.DatasetZones: 2}[dataset]
	keyCols = max(keyCols, 1)
	for i, r := range tb.Rows {
		if slices.Equal(r[:keyCols], row[:keyCols]) {
			tb.Rows[i] = row
			return
		}
	}
	tb.Rows = append(tb.Rows, row)
}
