package refdata_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// testKey is a fixed key, so that test bundles are reproducible.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// nextBundle returns a bundle of version v carrying the named datasets of
// base at version v, after edit.
func nextBundle(t testing.TB, base *refdata.Snapshot, v string, edit func(b *refdata.Bundle), datasets ...string) *refdata.Bundle {
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

func signed(t testing.TB, b *refdata.Bundle, key ed25519.PrivateKey) []byte {
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

// setRow replaces the row with row's key, or adds row.
func setRow(b *refdata.Bundle, dataset string, row []string) {
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

func TestBundleRoundTrip(t *testing.T) {
	key := testKey(1)
	b := nextBundle(t, refdata.Default(), "2026.11.26.1", nil, refdata.Datasets()...)
	data := signed(t, b, key)
	got, err := refdata.DecodeBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := rollout.Verify(got, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(b, got); d != "" {
		t.Errorf("decoded bundle differs (-want +got):\n%s", d)
	}
	again, err := got.Encode()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("re-encoding differs: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	b := nextBundle(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours)
	good := string(signed(t, b, testKey(1)))
	tests := map[string]string{
		"empty":             "",
		"no magic":          strings.Replace(good, "=fjord-refdata-bundle 1", "=fjord-refdata-bundle 2", 1),
		"CRLF":              strings.ReplaceAll(good, "\n", "\r\n"),
		"unsorted":          strings.Replace(good, "aliceblue\t#f0f8ff\nantiquewhite\t#faebd7\n", "antiquewhite\t#faebd7\naliceblue\t#f0f8ff\n", 1),
		"duplicate":         strings.Replace(good, "aliceblue\t#f0f8ff\n", "aliceblue\t#f0f8ff\naliceblue\t#f0f8ff\n", 1),
		"extra field":       strings.Replace(good, "aliceblue\t#f0f8ff\n", "aliceblue\t#f0f8ff\tx\n", 1),
		"unknown table":     strings.Replace(good, "=table colours", "=table planets", 1),
		"wrong header":      strings.Replace(good, "name\thex\n", "hex\tname\n", 1),
		"bad version":       strings.Replace(good, "=version 2026.11.26.1", "=version 2026..1", 1),
		"bad created":       strings.Replace(good, "=created 2026-11-26T00:00:00Z", "=created yesterday", 1),
		"no end":            strings.Replace(good, "=end\n", "", 1),
		"junk after sig":    good + "x\n",
		"short signature":   good[:strings.LastIndex(good, " ")] + " AAAA\n",
		"two signatures":    good + good[strings.Index(good, "=signature"):],
		"row starting =":    strings.Replace(good, "aliceblue\t", "=aliceblue\t", 1),
		"trailing space":    strings.Replace(good, "=created 2026-11-26T00:00:00Z", "=created 2026-11-26T00:00:00Z ", 1),
		"non-UTC created":   strings.Replace(good, "=created 2026-11-26T00:00:00Z", "=created 2026-11-26T01:00:00+01:00", 1),
		"tombstone version": strings.Replace(good, "=end\n", "=table tombstones 1\ndataset\tkey\tnote\n=end\n", 1),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := refdata.DecodeBundle([]byte(data)); !errors.Is(err, refdata.ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	key, other := testKey(1), testKey(2)
	pub := key.Public().(ed25519.PublicKey)
	b := nextBundle(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours)
	unsigned, _ := b.Encode()
	good := signed(t, b, key)
	byOther := signed(t, nextBundle(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours), other)
	tampered := bytes.Replace(good, []byte("#f0f8ff"), []byte("#f0f8fe"), 1)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"good", good, nil},
		{"unsigned", unsigned, refdata.ErrUnsigned},
		{"untrusted key", byOther, refdata.ErrBadSignature},
		{"tampered", tampered, refdata.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := refdata.DecodeBundle(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if err := rollout.Verify(d, pub); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"2026.11.25.1", "2026.11.25.1", 0},
		{"2026.11.25.2", "2026.11.25.10", -1},
		{"2026.12", "2026.11.30", 1},
		{"2026.11", "2026.11.1", -1},
		{"1.a", "1.2", 1},
		{"1.a", "1.b", -1},
	}
	for _, tt := range tests {
		if got := refdata.CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
