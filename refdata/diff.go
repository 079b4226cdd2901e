package refdata

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// DatasetDiff lists what changes in one dataset from one bundle to another.
// Keys are the key columns joined by spaces.
type DatasetDiff struct {
	Name           string
	FromVersion    string // "" when only the second bundle has it
	ToVersion      string // "" when only the first has it
	Added, Removed []string
	Changed        []string
}

// Diff compares the datasets of two bundles, in canonical dataset order;
// datasets that neither bundle changes are left out.
func Diff(a, b *Bundle) []DatasetDiff {
	var out []DatasetDiff
	for _, s := range schemas {
		ta, okA := a.Table(s.name)
		tb, okB := b.Table(s.name)
		if !okA && !okB {
			continue
		}
		d := DatasetDiff{Name: s.name}
		rowsA, rowsB := map[string][]string{}, map[string][]string{}
		if okA {
			d.FromVersion = ta.Version
			for _, r := range ta.Rows {
				rowsA[s.key(r)] = r
			}
		}
		if okB {
			d.ToVersion = tb.Version
			for _, r := range tb.Rows {
				rowsB[s.key(r)] = r
			}
		}
		for k, r := range rowsB {
			ra, ok := rowsA[k]
			switch {
			case !ok:
				d.Added = append(d.Added, spaced(k))
			case !slices.Equal(ra, r):
				d.Changed = append(d.Changed, spaced(k))
			}
		}
		for k := range rowsA {
			if _, ok := rowsB[k]; !ok {
				d.Removed = append(d.Removed, spaced(k))
			}
		}
		slices.Sort(d.Added)
		slices.Sort(d.Removed)
		slices.Sort(d.Changed)
		if d.FromVersion != d.ToVersion || len(d.Added)+len(d.Removed)+len(d.Changed) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func spaced(key string) string { return strings.ReplaceAll(key, "\t", " ") }

// Key files hold one line: "ed25519-public BASE64" or
// "ed25519-private BASE64-OF-THE-32-BYTE-SEED".

// MarshalPublicKey returns the key-file form of a public key.
func MarshalPublicKey(k ed25519.PublicKey) []byte {
	return []byte("ed25519-public " + base64.StdEncoding.EncodeToString(k) + "\n")
}

// MarshalPrivateKey returns the key-file form of a private key.
func MarshalPrivateKey(k ed25519.PrivateKey) []byte {
	return []byte("ed25519-private " + base64.StdEncoding.EncodeToString(k.Seed()) + "\n")
}

// ParsePublicKey reads a public key file.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	raw, err := parseKey(data, "ed25519-public", ed25519.PublicKeySize)
	return ed25519.PublicKey(raw), err
}

// ParsePrivateKey reads a private key file.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	raw, err := parseKey(data, "ed25519-private", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(raw), nil
}

func parseKey(data []byte, kind string, size int) ([]byte, error) {
	text, ok := strings.CutPrefix(strings.TrimSpace(string(data)), kind+" ")
	if !ok {
		return nil, fmt.Errorf("refdata: not an %s key file (want %q and base64)", kind, kind)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != size {
		return nil, fmt.Errorf("refdata: %s key: want %d bytes of base64", kind, size)
	}
	return raw, nil
}
