package refdata_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/bundletest"
	"github.com/fjord-data/fjord/refdata/rollout"
)

func TestBundleRoundTrip(t *testing.T) {
	key := bundletest.Key(1)
	b := bundletest.Next(t, refdata.Default(), "2026.11.26.1", nil, refdata.Datasets()...)
	data := bundletest.Signed(t, b, key)
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
	b := bundletest.Next(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours)
	good := string(bundletest.Signed(t, b, bundletest.Key(1)))
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
	key, other := bundletest.Key(1), bundletest.Key(2)
	pub := key.Public().(ed25519.PublicKey)
	b := bundletest.Next(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours)
	unsigned, _ := b.Encode()
	good := bundletest.Signed(t, b, key)
	byOther := bundletest.Signed(t, bundletest.Next(t, refdata.Default(), "2026.11.26.1", nil, refdata.DatasetColours), other)
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
