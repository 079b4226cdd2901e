package refdata

import (
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"
)

// numDatasets is how many datasets a Snapshot holds.
const numDatasets = 8

// Snapshot is one immutable, consistent version of every dataset. All its
// methods are safe for concurrent use; nothing a method returns aliases the
// snapshot's memory except strings.
type Snapshot struct {
	version string
	created time.Time
	tables  [numDatasets]*Table // by schema index; never modified

	countries    *countrySet
	former       *formerSet
	currencies   *currencySet
	uses         *useSet
	subdivisions *subdivisionSet
	languages    *languageSet
	colours      *colourSet
	zones        *zoneSet
}

// Version is the version of the bundle that made the snapshot.
func (s *Snapshot) Version() string { return s.version }

// Created is when that bundle was made.
func (s *Snapshot) Created() time.Time { return s.created }

// Datasets describes the snapshot's datasets in canonical order.
func (s *Snapshot) Datasets() []DatasetInfo {
	out := make([]DatasetInfo, 0, numDatasets)
	for _, t := range s.tables {
		out = append(out, DatasetInfo{Name: t.Name, Version: t.Version, Source: t.Source, Rows: len(t.Rows)})
	}
	return out
}

// Dataset describes one dataset; the error wraps ErrNotFound for an
// unknown name.
func (s *Snapshot) Dataset(name string) (DatasetInfo, error) {
	i := schemaIndex(name)
	if i < 0 || i >= numDatasets {
		return DatasetInfo{}, notFound("datasets", name)
	}
	t := s.tables[i]
	return DatasetInfo{Name: t.Name, Version: t.Version, Source: t.Source, Rows: len(t.Rows)}, nil
}

// Bundle returns the snapshot as an unsigned bundle carrying every dataset.
func (s *Snapshot) Bundle() *Bundle {
	b := &Bundle{Version: s.version, Created: s.created}
	for _, t := range s.tables {
		c := *t
		c.Rows = slices.Clone(t.Rows) // rows themselves are never modified
		b.Tables = append(b.Tables, c)
	}
	return b
}

// build makes a snapshot from one table per dataset. Each typed set is
// reused from prev when its table is the same.
func build(version string, created time.Time, tables [numDatasets]*Table, prev *Snapshot) (*Snapshot, error) {
	s := &Snapshot{version: version, created: created, tables: tables}
	reuse := func(i int) bool { return prev != nil && prev.tables[i] == tables[i] }
	var err error
	for i, t := range tables {
		if t == nil || t.Name != schemas[i].name {
			return nil, fmt.Errorf("dataset %s is missing", schemas[i].name)
		}
		if reuse(i) {
			continue
		}
		switch t.Name {
		case DatasetCountries:
			s.countries, err = buildCountries(t)
		case DatasetFormerCountries:
			s.former, err = buildFormer(t)
		case DatasetCurrencies:
			s.currencies, err = buildCurrencies(t)
		case DatasetCountryCurrencies:
			s.uses, err = buildUses(t)
		case DatasetSubdivisions:
			s.subdivisions, err = buildSubdivisions(t)
		case DatasetLanguages:
			s.languages, err = buildLanguages(t)
		case DatasetColours:
			s.colours, err = buildColours(t)
		case DatasetZones:
			s.zones = buildZones(t)
		}
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", t.Name, err)
		}
	}
	if prev != nil {
		s.reuseFrom(prev, reuse)
	}
	return s, nil
}

func (s *Snapshot) reuseFrom(p *Snapshot, reuse func(int) bool) {
	if reuse(0) {
		s.countries = p.countries
	}
	if reuse(1) {
		s.former = p.former
	}
	if reuse(2) {
		s.currencies = p.currencies
	}
	if reuse(3) {
		s.uses = p.uses
	}
	if reuse(4) {
		s.subdivisions = p.subdivisions
	}
	if reuse(5) {
		s.languages = p.languages
	}
	if reuse(6) {
		s.colours = p.colours
	}
	if reuse(7) {
		s.zones = p.zones
	}
}

// --- countries

type countrySet struct {
	list    []Country
	aliases [][]string
	byA2    [26 * 26]uint16 // index+1 into list
	byA3    map[string]uint16
	byNum   map[int]uint16
	byName  map[string]uint16 // folded names and aliases
}

func atoiOpt(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}

func buildCountries(t *Table) (*countrySet, error) {
	cs := &countrySet{byA3: map[string]uint16{}, byNum: map[int]uint16{}, byName: map[string]uint16{}}
	for _, r := range t.Rows {
		num, err := atoiOpt(r[2])
		if err != nil || !isUpper(r[0], 2) || !isUpper(r[1], 3) || r[3] == "" {
			return nil, fmt.Errorf("country %q: want alpha-2, alpha-3, a numeric code and a name", r[0])
		}
		cs.list = append(cs.list, Country{Alpha2: r[0], Alpha3: r[1], Numeric: num, Name: r[3], OfficialName: r[4]})
		var aliases []string
		if r[5] != "" {
			aliases = strings.Split(r[5], "|")
		}
		cs.aliases = append(cs.aliases, aliases)
		i := uint16(len(cs.list))
		cs.byA2[int(r[0][0]-'A')*26+int(r[0][1]-'A')] = i
		if _, dup := cs.byA3[r[1]]; dup {
			return nil, fmt.Errorf("alpha-3 %s is used twice", r[1])
		}
		cs.byA3[r[1]] = i
		if num != 0 {
			if _, dup := cs.byNum[num]; dup {
				return nil, fmt.Errorf("numeric %03d is used twice", num)
			}
			cs.byNum[num] = i
		}
		for _, n := range append([]string{r[3], r[4]}, aliases...) {
			if n == "" {
				continue
			}
			k := string(foldName(nil, n))
			if j, dup := cs.byName[k]; dup && j != i {
				return nil, fmt.Errorf("name %q is used by %s and %s", n, cs.list[j-1].Alpha2, r[0])
			}
			cs.byName[k] = i
		}
	}
	return cs, nil
}

func isUpper(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Country returns the country with the ISO 3166-1 alpha-2 code, in either
// case. It does not allocate when it finds one.
func (s *Snapshot) Country(alpha2 string) (Country, error) {
	if i := s.countries.alpha2(alpha2); i != 0 {
		return s.countries.list[i-1], nil
	}
	return Country{}, notFound(DatasetCountries, alpha2)
}

// alpha2 returns the index+1 of the country with the code, or 0. It is
// small enough to be inlined into Country.
func (cs *countrySet) alpha2(code string) uint16 {
	if len(code) != 2 {
		return 0
	}
	a, b := uint(code[0]|0x20)-'a', uint(code[1]|0x20)-'a'
	if a >= 26 || b >= 26 {
		return 0
	}
	return cs.byA2[a*26+b]
}

// CountryByAlpha3 returns the country with the alpha-3 code, in either case.
func (s *Snapshot) CountryByAlpha3(alpha3 string) (Country, error) {
	var buf [3]byte
	if len(alpha3) == 3 {
		for i := range 3 {
			buf[i] = upper(alpha3[i])
		}
		if i, ok := s.countries.byA3[string(buf[:])]; ok {
			return s.countries.list[i-1], nil
		}
	}
	return Country{}, notFound(DatasetCountries, alpha3)
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// CountryByNumeric returns the country with the ISO 3166-1 numeric code.
func (s *Snapshot) CountryByNumeric(n int) (Country, error) {
	if i, ok := s.countries.byNum[n]; ok {
		return s.countries.list[i-1], nil
	}
	return Country{}, notFound(DatasetCountries, fmt.Sprintf("%03d", n))
}

// CountryByName finds a country by its English short or official name, a
// former name or an alias ("Turkey", "Swaziland", "Ivory Coast"), ignoring
// case, accents and punctuation.
func (s *Snapshot) CountryByName(name string) (Country, error) {
	var buf [96]byte
	k := foldName(buf[:0], name)
	if i, ok := s.countries.byName[string(k)]; ok {
		return s.countries.list[i-1], nil
	}
	return Country{}, notFound(DatasetCountries, name)
}

// CountryAliases returns the other names a country is known by: former
// names and common variants.
func (s *Snapshot) CountryAliases(alpha2 string) ([]string, error) {
	c, err := s.Country(alpha2)
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.countries.aliases[s.countries.alpha2(c.Alpha2)-1]), nil
}

// Countries yields every country in alpha-2 order.
func (s *Snapshot) Countries() iter.Seq[Country] { return values(s.countries.list) }

func values[T any](list []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, v := range list {
			if !yield(v) {
				return
			}
		}
	}
}

// --- former countries

type formerSet struct {
	list []FormerCountry
	by   map[string]int // alpha-4 code, and alpha-2/alpha-3 codes (latest withdrawal wins)
}

func buildFormer(t *Table) (*formerSet, error) {
	fs := &formerSet{by: map[string]int{}}
	for _, r := range t.Rows {
		num, err := atoiOpt(r[3])
		if err != nil || !isUpper(r[0], 4) {
			return nil, fmt.Errorf("former country %q: want an alpha-4 code and a numeric code", r[0])
		}
		w, err := ParseDate(r[5])
		if err != nil {
			return nil, fmt.Errorf("former country %s: %w", r[0], err)
		}
		fs.list = append(fs.list, FormerCountry{Alpha4: r[0], Alpha2: r[1], Alpha3: r[2], Numeric: num, Name: r[4], Withdrawn: w, Comment: r[6]})
	}
	for i, f := range fs.list {
		fs.by[f.Alpha4] = i
		for _, code := range []string{f.Alpha2, f.Alpha3} {
			if j, ok := fs.by[code]; code != "" && (!ok || fs.list[j].Withdrawn.Compare(f.Withdrawn) < 0) {
				fs.by[code] = i
			}
		}
	}
	return fs, nil
}

// FormerCountry returns a withdrawn country by its ISO 3166-3 alpha-4 code
// or by its former alpha-2 or alpha-3 code (the latest withdrawn when a
// code was reused), in upper case.
func (s *Snapshot) FormerCountry(code string) (FormerCountry, error) {
	if i, ok := s.former.by[strings.ToUpper(code)]; ok {
		return s.former.list[i], nil
	}
	return FormerCountry{}, notFound(DatasetFormerCountries, code)
}

// FormerCountries yields every withdrawn country in alpha-4 order.
func (s *Snapshot) FormerCountries() iter.Seq[FormerCountry] { return values(s.former.list) }

// --- currencies

type currencySet struct {
	list   []Currency
	byCode map[string]int
	byNum  map[int]int // current currencies only
}

func buildCurrencies(t *Table) (*currencySet, error) {
	cs := &currencySet{byCode: map[string]int{}, byNum: map[int]int{}}
	for _, r := range t.Rows {
		c := Currency{Code: r[0], Name: r[2]}
		var errs [6]error
		c.Numeric, errs[0] = atoiOpt(r[1])
		c.ISOMinorUnits, errs[1] = parseMinor(r[3])
		c.CLDRDigits, errs[2] = strconv.Atoi(r[4])
		c.CLDRRounding, errs[3] = strconv.Atoi(r[5])
		c.CLDRCashDigits, errs[4] = strconv.Atoi(r[6])
		c.CLDRCashRounding, _ = strconv.Atoi(r[7])
		c.Until, errs[5] = ParseDate(r[8])
		if !isUpper(r[0], 3) || r[2] == "" {
			return nil, fmt.Errorf("currency %q: want a three-letter code and a name", r[0])
		}
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("currency %s: %w", r[0], err)
			}
		}
		c.Historic = r[8] != ""
		cs.byCode[c.Code] = len(cs.list)
		if c.Numeric != 0 && !c.Historic {
			cs.byNum[c.Numeric] = len(cs.list)
		}
		cs.list = append(cs.list, c)
	}
	return cs, nil
}

func parseMinor(s string) (MinorUnits, error) {
	switch s {
	case "":
		return MinorUnitsUnlisted, nil
	case "N.A.":
		return MinorUnitsNA, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 9 {
		return 0, fmt.Errorf("ISO minor units %q: want 0-9, N.A. or empty", s)
	}
	return MinorUnits(n), nil
}

func formatMinor(m MinorUnits) string {
	switch m {
	case MinorUnitsUnlisted:
		return ""
	case MinorUnitsNA:
		return "N.A."
	}
	return strconv.Itoa(int(m))
}

// Currency returns the currency with the ISO 4217 code, in either case,
// current or historic.
func (s *Snapshot) Currency(code string) (Currency, error) {
	var buf [3]byte
	if len(code) == 3 {
		for i := range 3 {
			buf[i] = upper(code[i])
		}
		if i, ok := s.currencies.byCode[string(buf[:])]; ok {
			return s.currencies.list[i], nil
		}
	}
	return Currency{}, notFound(DatasetCurrencies, code)
}

// CurrencyByNumeric returns the current currency with the ISO 4217 numeric code.
func (s *Snapshot) CurrencyByNumeric(n int) (Currency, error) {
	if i, ok := s.currencies.byNum[n]; ok {
		return s.currencies.list[i], nil
	}
	return Currency{}, notFound(DatasetCurrencies, fmt.Sprintf("%03d", n))
}

// Currencies yields every currency in code order.
func (s *Snapshot) Currencies() iter.Seq[Currency] { return values(s.currencies.list) }

// --- country → currency

type useSet struct {
	byCountry map[string][]CurrencyUse // newest From first
}

func buildUses(t *Table) (*useSet, error) {
	us := &useSet{byCountry: map[string][]CurrencyUse{}}
	for _, r := range t.Rows {
		from, err1 := ParseDate(r[2])
		to, err2 := ParseDate(r[3])
		if err1 != nil || err2 != nil || (r[4] != "true" && r[4] != "false") {
			return nil, fmt.Errorf("use of %s in %s: bad dates or tender flag", r[1], r[0])
		}
		u := CurrencyUse{Country: r[0], Currency: r[1], From: from, To: to, Tender: r[4] == "true"}
		us.byCountry[r[0]] = append(us.byCountry[r[0]], u)
	}
	for _, l := range us.byCountry {
		slices.SortStableFunc(l, func(a, b CurrencyUse) int { return b.From.Compare(a.From) })
	}
	return us, nil
}

// CurrencyUses returns the currencies a country has used, newest first,
// each with the dates it was in use (CLDR). A country with no entry
// yields a not-found error.
func (s *Snapshot) CurrencyUses(alpha2 string) ([]CurrencyUse, error) {
	l, ok := s.uses.byCountry[strings.ToUpper(alpha2)]
	if !ok {
		return nil, notFound(DatasetCountryCurrencies, alpha2)
	}
	return slices.Clone(l), nil
}

// CurrencyOn returns the currency a country introduced most recently among
// the legal tenders in use on day d: for Croatia, HRK on 2022-12-31 and EUR
// from 2023-01-01, although the kuna stayed in use until 2023-01-14.
func (s *Snapshot) CurrencyOn(alpha2 string, d Date) (Currency, error) {
	for _, u := range s.uses.byCountry[strings.ToUpper(alpha2)] {
		if u.Tender && u.ValidOn(d) {
			return s.Currency(u.Currency)
		}
	}
	return Currency{}, notFound(DatasetCountryCurrencies, alpha2+"@"+d.String())
}

// --- subdivisions

type subdivisionSet struct {
	list      []Subdivision
	byCode    map[string]int
	byCountry map[string][]int
}

func buildSubdivisions(t *Table) (*subdivisionSet, error) {
	ss := &subdivisionSet{byCode: map[string]int{}, byCountry: map[string][]int{}}
	for _, r := range t.Rows {
		if !strings.HasPrefix(r[0], r[1]+"-") || r[2] == "" {
			return nil, fmt.Errorf("subdivision %q: want COUNTRY-CODE and a name", r[0])
		}
		ss.byCode[r[0]] = len(ss.list)
		ss.byCountry[r[1]] = append(ss.byCountry[r[1]], len(ss.list))
		ss.list = append(ss.list, Subdivision{Code: r[0], Country: r[1], Name: r[2], Type: r[3], Parent: r[4]})
	}
	return ss, nil
}

// Subdivision returns the ISO 3166-2 subdivision with the code, such as
// "HR-21", in either case.
func (s *Snapshot) Subdivision(code string) (Subdivision, error) {
	if i, ok := s.subdivisions.byCode[strings.ToUpper(code)]; ok {
		return s.subdivisions.list[i], nil
	}
	return Subdivision{}, notFound(DatasetSubdivisions, code)
}

// Subdivisions yields a country's subdivisions in code order.
func (s *Snapshot) Subdivisions(alpha2 string) iter.Seq[Subdivision] {
	idx := s.subdivisions.byCountry[strings.ToUpper(alpha2)]
	return func(yield func(Subdivision) bool) {
		for _, i := range idx {
			if !yield(s.subdivisions.list[i]) {
				return
			}
		}
	}
}

// --- languages

type languageSet struct {
	list []Language
	by   map[string]int // 639-3, 639-2/B, 639-2/T and 639-1 codes
}

func buildLanguages(t *Table) (*languageSet, error) {
	ls := &languageSet{by: map[string]int{}}
	for _, r := range t.Rows {
		if len(r[0]) != 3 || r[4] == "" {
			return nil, fmt.Errorf("language %q: want a three-letter code and a name", r[0])
		}
		ls.list = append(ls.list, Language{Code: r[0], Part2B: r[1], Part2T: r[2], Part1: r[3], Name: r[4], Scope: r[5], Type: r[6]})
	}
	for i, l := range ls.list { // primary codes win over secondary ones
		ls.by[l.Code] = i
	}
	for i, l := range ls.list {
		for _, c := range []string{l.Part2B, l.Part2T, l.Part1} {
			if _, taken := ls.by[c]; c != "" && !taken {
				ls.by[c] = i
			}
		}
	}
	return ls, nil
}

// Language returns a language by its ISO 639-3, 639-2 (B or T) or 639-1
// code, in either case.
func (s *Snapshot) Language(code string) (Language, error) {
	if i, ok := s.languages.by[strings.ToLower(code)]; ok {
		return s.languages.list[i], nil
	}
	return Language{}, notFound(DatasetLanguages, code)
}

// Languages yields every language in code order.
func (s *Snapshot) Languages() iter.Seq[Language] { return values(s.languages.list) }

// --- colours

type colourSet struct {
	list []Colour
	by   map[string]int
}

func buildColours(t *Table) (*colourSet, error) {
	cs := &colourSet{by: map[string]int{}}
	for _, r := range t.Rows {
		v, err := strconv.ParseUint(strings.TrimPrefix(r[1], "#"), 16, 32)
		if err != nil || len(r[1]) != 7 || r[1][0] != '#' || r[0] != strings.ToLower(r[0]) {
			return nil, fmt.Errorf("colour %q: want a lower-case name and #rrggbb", r[0])
		}
		cs.by[r[0]] = len(cs.list)
		cs.list = append(cs.list, Colour{Name: r[0], R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v)})
	}
	return cs, nil
}

// Colour returns the CSS named colour, in any case ("RebeccaPurple").
func (s *Snapshot) Colour(name string) (Colour, error) {
	if i, ok := s.colours.by[strings.ToLower(name)]; ok {
		return s.colours.list[i], nil
	}
	return Colour{}, notFound(DatasetColours, name)
}

// Colours yields every named colour in name order.
func (s *Snapshot) Colours() iter.Seq[Colour] { return values(s.colours.list) }

// --- time zones

type zoneSet struct {
	byCountry map[string][]string
}

func buildZones(t *Table) *zoneSet {
	zs := &zoneSet{byCountry: map[string][]string{}}
	for _, r := range t.Rows {
		zs.byCountry[r[0]] = append(zs.byCountry[r[0]], r[1])
	}
	return zs
}

// TimeZones returns the IANA time zones of a country, in name order.
func (s *Snapshot) TimeZones(alpha2 string) ([]string, error) {
	z, ok := s.zones.byCountry[strings.ToUpper(alpha2)]
	if !ok {
		return nil, notFound(DatasetZones, alpha2)
	}
	return slices.Clone(z), nil
}
