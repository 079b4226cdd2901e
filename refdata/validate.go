package refdata

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Validate checks that b can replace the datasets of the same names in
// base: well formed, each dataset's version not older than base's (the
// same version only with the same rows), every row of base that b drops
// named in b's tombstones, and every reference of the result resolving
// (country → currency, subdivision → country and parent, zone → country).
// It returns the snapshot that applying b would give. Errors wrap
// ErrMalformed, ErrStale or ErrInvalid. Validate does not look at the
// bundle's own version or its signature.
func Validate(base *Snapshot, b *Bundle) (*Snapshot, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	tables := base.tables
	var tomb map[string]bool
	if t, ok := b.Table(tombstonesTable); ok {
		tomb = make(map[string]bool, len(t.Rows))
		for _, r := range t.Rows {
			tomb[r[0]+"\x00"+r[1]] = true
		}
	}
	used := map[string]bool{}
	for i := range b.Tables {
		nt := &b.Tables[i]
		if nt.Name == tombstonesTable {
			continue
		}
		idx := schemaIndex(nt.Name)
		if err := checkSuccession(tables[idx], nt, tomb, used); err != nil {
			return nil, err
		}
		if CompareVersions(nt.Version, tables[idx].Version) == 0 {
			continue // the same version with the same rows: nothing changes
		}
		c := *nt
		tables[idx] = &c
	}
	for k := range tomb {
		if !used[k] {
			ds, key, _ := strings.Cut(k, "\x00")
			return nil, fmt.Errorf("%w: tombstone for %s %q, which the bundle keeps or the current data lacks", ErrInvalid, ds, key)
		}
	}
	s, err := build(b.Version, b.Created, tables, base)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.checkReferences(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s, nil
}

// checkSuccession checks that next may follow prev.
func checkSuccession(prev, next *Table, tomb, used map[string]bool) error {
	switch c := CompareVersions(next.Version, prev.Version); {
	case c < 0:
		return fmt.Errorf("%w: dataset %s version %s is older than the current %s", ErrStale, next.Name, next.Version, prev.Version)
	case c == 0 && !slices.EqualFunc(prev.Rows, next.Rows, slices.Equal[[]string]):
		return fmt.Errorf("%w: dataset %s version %s differs from the current data of the same version", ErrInvalid, next.Name, next.Version)
	}
	s, _ := schemaOf(next.Name)
	keys := make(map[string]bool, len(next.Rows))
	for _, r := range next.Rows {
		keys[s.key(r)] = true
	}
	for _, r := range prev.Rows {
		k := s.key(r)
		if keys[k] {
			continue
		}
		spaced := strings.ReplaceAll(k, "\t", " ") // a tombstone names a key of several columns joined by spaces
		tk := next.Name + "\x00" + spaced
		if !tomb[tk] {
			return fmt.Errorf("%w: dataset %s removes %q without a tombstone", ErrInvalid, next.Name, spaced)
		}
		used[tk] = true
	}
	return nil
}

// checkReferences checks that every code a dataset refers to exists.
func (s *Snapshot) checkReferences() error {
	var errs []error
	country := func(code string) bool {
		_, err := s.Country(code)
		if err != nil {
			_, err = s.FormerCountry(code)
		}
		return err == nil
	}
	for _, r := range s.tables[3].Rows { // countrycurrencies
		if !country(r[0]) {
			errs = append(errs, fmt.Errorf("countrycurrencies: unknown country %s", r[0]))
		}
		if _, err := s.Currency(r[1]); err != nil {
			errs = append(errs, fmt.Errorf("countrycurrencies: %s uses unknown currency %s", r[0], r[1]))
		}
	}
	for _, r := range s.tables[4].Rows { // subdivisions
		if _, err := s.Country(r[1]); err != nil {
			errs = append(errs, fmt.Errorf("subdivisions: %s: unknown country %s", r[0], r[1]))
		}
		if _, err := s.Subdivision(r[4]); r[4] != "" && err != nil {
			errs = append(errs, fmt.Errorf("subdivisions: %s: unknown parent %s", r[0], r[4]))
		}
	}
	for _, r := range s.tables[7].Rows { // zones
		if _, err := s.Country(r[0]); err != nil {
			errs = append(errs, fmt.Errorf("zones: %s: unknown country %s", r[1], r[0]))
		}
	}
	if len(errs) > 5 {
		errs = append(errs[:5], fmt.Errorf("and %d more", len(errs)-5))
	}
	return errors.Join(errs...)
}
