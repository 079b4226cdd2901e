package refdata

import (
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
