package refdata

import (
	"fmt"
	"slices"
	"strings"
)

// The datasets a bundle may carry, in the order they are encoded.
const (
	DatasetCountries         = "countries"
	DatasetFormerCountries   = "formercountries"
	DatasetCurrencies        = "currencies"
	DatasetCountryCurrencies = "countrycurrencies"
	DatasetSubdivisions      = "subdivisions"
	DatasetLanguages         = "languages"
	DatasetColours           = "colours"
	DatasetZones             = "zones"
)

// tombstonesTable names the table that lists rows a bundle removes on
// purpose: dataset, key (the key columns joined by single spaces, such as
// "HR Europe/Zagreb"), note. It is not a dataset: it only travels in bundles.
const tombstonesTable = "tombstones"

// schema describes the columns of one table; the first keyCols columns
// form the row's key.
type schema struct {
	name    string
	cols    []string
	keyCols int
}

// Datasets returns the names of the datasets a Snapshot holds, in their
// canonical order.
func Datasets() []string {
	names := make([]string, 0, len(schemas))
	for _, s := range schemas {
		if s.name != tombstonesTable {
			names = append(names, s.name)
		}
	}
	return names
}

// schemas is a fixed table of the formats, never modified.
var schemas = [...]schema{
	{DatasetCountries, []string{"alpha2", "alpha3", "numeric", "name", "official", "aliases"}, 1},
	{DatasetFormerCountries, []string{"alpha4", "alpha2", "alpha3", "numeric", "name", "withdrawn", "comment"}, 1},
	{DatasetCurrencies, []string{"code", "numeric", "name", "iso_minor", "cldr_digits", "cldr_rounding", "cldr_cash_digits", "cldr_cash_rounding", "until"}, 1},
	{DatasetCountryCurrencies, []string{"country", "currency", "from", "to", "tender"}, 3},
	{DatasetSubdivisions, []string{"code", "country", "name", "type", "parent"}, 1},
	{DatasetLanguages, []string{"code", "part2b", "part2t", "part1", "name", "scope", "type"}, 1},
	{DatasetColours, []string{"name", "hex"}, 1},
	{DatasetZones, []string{"country", "zone"}, 2},
	{tombstonesTable, []string{"dataset", "key", "note"}, 2},
}

func schemaOf(name string) (schema, bool) {
	for _, s := range schemas {
		if s.name == name {
			return s, true
		}
	}
	return schema{}, false
}

func schemaIndex(name string) int {
	for i, s := range schemas {
		if s.name == name {
			return i
		}
	}
	return -1
}

// Table is one dataset as it travels in a bundle: a version, a note on
// where the data came from, and rows of text fields sorted by key. Fields
// hold no tab, newline or carriage return, and a row never starts with '='.
//
// A Table is a value to build bundles with; a Snapshot never shares its
// slices with one.
type Table struct {
	Name    string
	Version string     // ordered like bundle versions (CompareVersions)
	Source  string     // upstream sources, versions and licences, free text
	Rows    [][]string // each has len(Columns(Name)) fields
}

// Columns returns the column names of a dataset's table, or nil for an
// unknown dataset.
func Columns(dataset string) []string {
	s, ok := schemaOf(dataset)
	if !ok {
		return nil
	}
	return slices.Clone(s.cols)
}

// key returns the row's key: its key columns joined by a tab.
func (s schema) key(row []string) string {
	if s.keyCols == 1 {
		return row[0]
	}
	return strings.Join(row[:s.keyCols], "\t")
}

// SortRows sorts t's rows by key, the order a bundle requires.
func (t *Table) SortRows() {
	s, ok := schemaOf(t.Name)
	if !ok {
		return
	}
	slices.SortFunc(t.Rows, func(a, b []string) int { return strings.Compare(s.key(a), s.key(b)) })
}

// checkShape checks what the encoding needs: a known dataset, rows of the
// right width, fields that cannot break the framing, keys sorted and unique.
func (t *Table) checkShape() error {
	s, ok := schemaOf(t.Name)
	if !ok {
		return fmt.Errorf("unknown dataset %q", t.Name)
	}
	if t.Name != tombstonesTable {
		if err := checkVersion(t.Version); err != nil {
			return fmt.Errorf("dataset %s: %w", t.Name, err)
		}
	}
	if strings.ContainsAny(t.Source, "\t\r\n") {
		return fmt.Errorf("dataset %s: the source note holds a tab or line break", t.Name)
	}
	prev := ""
	for i, row := range t.Rows {
		if len(row) != len(s.cols) {
			return fmt.Errorf("dataset %s row %d: %d fields, want %d (%s)", t.Name, i+1, len(row), len(s.cols), strings.Join(s.cols, ","))
		}
		for j, f := range row {
			if strings.ContainsAny(f, "\t\r\n") {
				return fmt.Errorf("dataset %s row %d: field %s holds a tab or line break", t.Name, i+1, s.cols[j])
			}
		}
		if strings.HasPrefix(row[0], "=") {
			return fmt.Errorf("dataset %s row %d: a row may not start with '='", t.Name, i+1)
		}
		k := s.key(row)
		if k == "" {
			return fmt.Errorf("dataset %s row %d: empty key", t.Name, i+1)
		}
		if i > 0 && k <= prev {
			if k == prev {
				return fmt.Errorf("dataset %s: duplicate key %q", t.Name, k)
			}
			return fmt.Errorf("dataset %s: rows not sorted by key (%q after %q)", t.Name, k, prev)
		}
		prev = k
	}
	return nil
}
