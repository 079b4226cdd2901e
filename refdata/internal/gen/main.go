// Command gen generates refdata's compiled-in datasets (data/builtin.bundle.gz
// and data/manifest.json) from files that package managers install. It
// downloads nothing; install the sources first:
//
//	apt-get install iso-codes tzdata         # iso-codes 4.15.0, tzdata 2025b
//	mkdir /tmp/refdata-src && cd /tmp/refdata-src && npm init -y && \
//	  npm install cldr-core@48.2.0 cldr-localenames-full@48.2.0 \
//	  cldr-numbers-full@48.2.0 currency-codes@2.2.0 color-name@2.1.1
//
// then, in refdata/:
//
//	REFDATA_NPM=/tmp/refdata-src/node_modules go generate .
//
// Sources and how they are used (licences: see refdata/MANIFEST.md):
//   - CLDR (cldr-core, cldr-localenames-full, cldr-numbers-full; Unicode-3.0):
//     English country and currency names and their variants, currency
//     digits and rounding, country → currency with dates, code mappings.
//   - ISO 4217 list one as shipped by currency-codes (MIT): numeric codes and
//     ISO minor units.
//   - iso-codes (Debian; LGPL-2.1+): only the ISO code assignments, which are
//     facts: ISO 3166-1 codes and official names, ISO 3166-2 codes, names,
//     types and parents, ISO 3166-3 withdrawn codes and dates, ISO 639-2/3
//     codes and reference names. No translations are taken.
//   - tzdata zone.tab (public domain): IANA time zones per country.
//   - color-name (MIT): the CSS Color 4 named colours.
//   - curated.tsv beside this file: facts newer than the sources, each with
//     its reference.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fjord-data/fjord/refdata"
)

type config struct {
	npm, isoCodes, zoneinfo, out, version, created string
}

func main() {
	var c config
	flag.StringVar(&c.npm, "npm", os.Getenv("REFDATA_NPM"), "node_modules directory with the npm sources (env REFDATA_NPM)")
	flag.StringVar(&c.isoCodes, "iso-codes", "/usr/share/iso-codes/json", "iso-codes JSON directory")
	flag.StringVar(&c.zoneinfo, "zoneinfo", "/usr/share/zoneinfo", "tzdata directory")
	flag.StringVar(&c.out, "out", "data", "output directory")
	flag.StringVar(&c.version, "version", "2026.11.25.1", "version of the bundle and every dataset")
	flag.StringVar(&c.created, "created", "2026-11-25T00:00:00Z", "creation time of the bundle")
	flag.Parse()
	if c.npm == "" {
		log.Fatal("gen: set -npm or REFDATA_NPM to the node_modules directory (see the package doc)")
	}
	if err := run(c); err != nil {
		log.Fatalf("gen: %v", err)
	}
}

// sources records what each upstream was, for the manifest.
type source struct {
	Name, Version, Licence string
}

type generator struct {
	c       config
	sources []source
	notes   []string
	srcVer  map[string]string
}

func run(c config) error {
	g := &generator{c: c, srcVer: map[string]string{}}
	if err := g.readVersions(); err != nil {
		return err
	}
	var tables []refdata.Table
	steps := []func() (refdata.Table, error){g.countries, g.formerCountries, g.currencies, g.countryCurrencies,
		g.subdivisions, g.languages, g.colours, g.zones}
	for _, step := range steps {
		t, err := step()
		if err != nil {
			return err
		}
		t.Version = c.version
		tables = append(tables, t)
	}
	created, err := time.Parse(time.RFC3339, c.created)
	if err != nil {
		return err
	}
	b := &refdata.Bundle{Version: c.version, Created: created, Tables: tables}
	b.Normalize()
	if _, err := refdata.FromBundle(b); err != nil {
		return fmt.Errorf("the generated data does not validate: %w", err)
	}
	return g.write(b)
}

func (g *generator) readVersions() error {
	for _, p := range []string{"cldr-core", "cldr-localenames-full", "cldr-numbers-full", "currency-codes", "color-name"} {
		var pj struct{ Version, License string }
		if err := readJSON(filepath.Join(g.c.npm, p, "package.json"), &pj); err != nil {
			return err
		}
		g.srcVer[p] = pj.Version
		g.sources = append(g.sources, source{Name: "npm " + p, Version: pj.Version, Licence: pj.License})
	}
	for _, p := range []string{"iso-codes", "tzdata"} {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", p).Output()
		if err != nil {
			return fmt.Errorf("dpkg-query %s: %v (is the Debian package installed?)", p, err)
		}
		g.srcVer[p] = string(out)
		lic := map[string]string{"iso-codes": "LGPL-2.1-or-later (only ISO code facts taken)", "tzdata": "public domain"}[p]
		g.sources = append(g.sources, source{Name: "debian " + p, Version: string(out), Licence: lic})
	}
	g.sources = append(g.sources, source{Name: "curated.tsv (refdata/internal/gen)", Version: "-", Licence: "facts, references in the file"})
	return nil
}

func (g *generator) cldrSource() string {
	return "CLDR " + g.srcVer["cldr-core"] + " (Unicode-3.0)"
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// --- countries

type isoCountry struct {
	Alpha2       string `json:"alpha_2"`
	Alpha3       string `json:"alpha_3"`
	Alpha4       string `json:"alpha_4"`
	Numeric      string `json:"numeric"`
	Name         string `json:"name"`
	OfficialName string `json:"official_name"`
	CommonName   string `json:"common_name"`
	Withdrawal   string `json:"withdrawal_date"`
	Comment      string `json:"comment"`
}

func (g *generator) cldrTerritories() (map[string]string, error) {
	var doc struct {
		Main map[string]struct {
			LocaleDisplayNames struct{ Territories map[string]string } `json:"localeDisplayNames"`
		}
	}
	err := readJSON(filepath.Join(g.c.npm, "cldr-localenames-full/main/en/territories.json"), &doc)
	return doc.Main["en"].LocaleDisplayNames.Territories, err
}

func (g *generator) codeMappings() (map[string]map[string]string, error) {
	var doc struct {
		Supplemental struct{ CodeMappings map[string]map[string]string } `json:"supplemental"`
	}
	err := readJSON(filepath.Join(g.c.npm, "cldr-core/supplemental/codeMappings.json"), &doc)
	return doc.Supplemental.CodeMappings, err
}

func (g *generator) countries() (refdata.Table, error) {
	var doc struct {
		List []isoCountry `json:"3166-1"`
	}
	if err := readJSON(filepath.Join(g.c.isoCodes, "iso_3166-1.json"), &doc); err != nil {
		return refdata.Table{}, err
	}
	names, err := g.cldrTerritories()
	if err != nil {
		return refdata.Table{}, err
	}
	maps, err := g.codeMappings()
	if err != nil {
		return refdata.Table{}, err
	}
	curated, err := readCurated("alias")
	if err != nil {
		return refdata.Table{}, err
	}
	t := refdata.Table{Name: refdata.DatasetCountries,
		Source: fmt.Sprintf("codes: ISO 3166-1 via iso-codes %s; names: %s", g.srcVer["iso-codes"], g.cldrSource())}
	for _, c := range doc.List {
		if m := maps[c.Alpha2]; m["_alpha3"] != c.Alpha3 || m["_numeric"] != c.Numeric {
			g.notes = append(g.notes, fmt.Sprintf("countries: CLDR code mapping for %s (%v) differs from ISO (%s, %s)", c.Alpha2, m, c.Alpha3, c.Numeric))
		}
		name := names[c.Alpha2]
		if name == "" {
			return t, fmt.Errorf("no CLDR English name for %s", c.Alpha2)
		}
		var aliases []string
		add := func(n string) {
			if n != "" && n != name && n != c.OfficialName && !slices.Contains(aliases, n) {
				aliases = append(aliases, n)
			}
		}
		for k, v := range names {
			if strings.HasPrefix(k, c.Alpha2+"-alt-") {
				add(v)
			}
		}
		add(c.Name)
		add(c.CommonName)
		for _, r := range curated {
			if r[1] == c.Alpha2 {
				add(r[2])
			}
		}
		sort.Strings(aliases)
		t.Rows = append(t.Rows, []string{c.Alpha2, c.Alpha3, c.Numeric, name, c.OfficialName, strings.Join(aliases, "|")})
	}
	return t, nil
}

func (g *generator) formerCountries() (refdata.Table, error) {
	var doc struct {
		List []isoCountry `json:"3166-3"`
	}
	if err := readJSON(filepath.Join(g.c.isoCodes, "iso_3166-3.json"), &doc); err != nil {
		return refdata.Table{}, err
	}
	t := refdata.Table{Name: refdata.DatasetFormerCountries, Source: "ISO 3166-3 via iso-codes " + g.srcVer["iso-codes"]}
	for _, c := range doc.List {
		t.Rows = append(t.Rows, []string{c.Alpha4, c.Alpha2, c.Alpha3, c.Numeric, c.Name, c.Withdrawal, c.Comment})
	}
	return t, nil
}

// --- currencies

type isoList struct {
	Published string `xml:"Pblshd,attr"`
	Entries   []struct {
		Name  string `xml:"CcyNm"`
		Code  string `xml:"Ccy"`
		Num   string `xml:"CcyNbr"`
		Minor string `xml:"CcyMnrUnts"`
	} `xml:"CcyTbl>CcyNtry"`
}

type cldrCurrencyData struct {
	Supplemental struct {
		CurrencyData struct {
			Fractions map[string]map[string]string
			Region    map[string][]map[string]map[string]string
		} `json:"currencyData"`
	} `json:"supplemental"`
}

func (g *generator) currencyData() (cldrCurrencyData, error) {
	var d cldrCurrencyData
	err := readJSON(filepath.Join(g.c.npm, "cldr-core/supplemental/currencyData.json"), &d)
	return d, err
}

func (g *generator) currencies() (refdata.Table, error) {
	raw, err := os.ReadFile(filepath.Join(g.c.npm, "currency-codes/iso-4217-list-one.xml"))
	if err != nil {
		return refdata.Table{}, err
	}
	var iso isoList
	if err := xml.Unmarshal(raw, &iso); err != nil {
		return refdata.Table{}, err
	}
	cd, err := g.currencyData()
	if err != nil {
		return refdata.Table{}, err
	}
	var names struct {
		Main map[string]struct {
			Numbers struct {
				Currencies map[string]struct {
					DisplayName string `json:"displayName"`
				}
			}
		}
	}
	if err := readJSON(filepath.Join(g.c.npm, "cldr-numbers-full/main/en/currencies.json"), &names); err != nil {
		return refdata.Table{}, err
	}
	maps, err := g.codeMappings()
	if err != nil {
		return refdata.Table{}, err
	}
	type cur struct{ numeric, name, minor string }
	all := map[string]*cur{}
	for _, e := range iso.Entries {
		if e.Code != "" && all[e.Code] == nil {
			all[e.Code] = &cur{numeric: e.Num, name: e.Name, minor: e.Minor}
		}
	}
	curated, err := readCurated("currency")
	if err != nil {
		return refdata.Table{}, err
	}
	for _, r := range curated { // kind code numeric minor reference
		if all[r[1]] == nil {
			all[r[1]] = &cur{numeric: r[2], minor: r[3]}
			g.notes = append(g.notes, fmt.Sprintf("currencies: %s numeric %s, ISO minor units %s from curated.tsv (%s)", r[1], r[2], r[3], r[4]))
		}
	}
	// Every currency a country used, with the last day of its last use.
	until := map[string]string{}
	open := map[string]bool{}
	for _, uses := range cd.Supplemental.CurrencyData.Region {
		for _, u := range uses {
			for code, attrs := range u {
				if all[code] == nil {
					all[code] = &cur{numeric: maps[code]["_numeric"]}
				}
				if attrs["_tender"] == "false" {
					continue
				}
				if attrs["_to"] == "" {
					open[code] = true
				} else if attrs["_to"] > until[code] {
					until[code] = attrs["_to"]
				}
			}
		}
	}
	t := refdata.Table{Name: refdata.DatasetCurrencies,
		Source: fmt.Sprintf("ISO 4217 list one of %s via currency-codes %s (numeric, minor units); %s (names, digits, dates)",
			iso.Published, g.srcVer["currency-codes"], g.cldrSource())}
	fr := cd.Supplemental.CurrencyData.Fractions
	for code, c := range all {
		f := fr[code]
		if f == nil {
			f = fr["DEFAULT"]
		}
		digits, rounding := f["_digits"], f["_rounding"]
		cash, cashRounding := f["_cashDigits"], f["_cashRounding"]
		if cash == "" {
			cash = digits
		}
		if cashRounding == "" {
			cashRounding = rounding
		}
		name := names.Main["en"].Numbers.Currencies[code].DisplayName
		if name == "" {
			name = c.name
		}
		if name == "" {
			name = code
		}
		end := ""
		if !open[code] {
			end = until[code]
		}
		t.Rows = append(t.Rows, []string{code, c.numeric, name, c.minor, digits, rounding, cash, cashRounding, end})
	}
	return t, nil
}

func (g *generator) countryCurrencies() (refdata.Table, error) {
	cd, err := g.currencyData()
	if err != nil {
		return refdata.Table{}, err
	}
	known, err := g.knownCountries()
	if err != nil {
		return refdata.Table{}, err
	}
	t := refdata.Table{Name: refdata.DatasetCountryCurrencies, Source: g.cldrSource()}
	seen := map[string]bool{}
	var dropped []string
	for country, uses := range cd.Supplemental.CurrencyData.Region {
		if !known[country] {
			dropped = append(dropped, country)
			continue
		}
		for _, u := range uses {
			for code, a := range u {
				tender := "true"
				if a["_tender"] == "false" {
					tender = "false"
				}
				k := country + code + a["_from"]
				if seen[k] {
					continue
				}
				seen[k] = true
				t.Rows = append(t.Rows, []string{country, code, a["_from"], a["_to"], tender})
			}
		}
	}
	sort.Strings(dropped)
	g.notes = append(g.notes, "countrycurrencies: CLDR regions that are neither ISO 3166-1 nor 3166-3 codes, left out: "+strings.Join(dropped, " "))
	return t, nil
}

func (g *generator) knownCountries() (map[string]bool, error) {
	known := map[string]bool{}
	for _, f := range []struct{ file, key string }{{"iso_3166-1.json", "3166-1"}, {"iso_3166-3.json", "3166-3"}} {
		var doc map[string][]isoCountry
		if err := readJSON(filepath.Join(g.c.isoCodes, f.file), &doc); err != nil {
			return nil, err
		}
		for _, c := range doc[f.key] {
			known[c.Alpha2] = true
		}
	}
	return known, nil
}

// --- subdivisions, languages

func (g *generator) subdivisions() (refdata.Table, error) {
	var doc struct {
		List []struct{ Code, Name, Type, Parent string } `json:"3166-2"`
	}
	if err := readJSON(filepath.Join(g.c.isoCodes, "iso_3166-2.json"), &doc); err != nil {
		return refdata.Table{}, err
	}
	t := refdata.Table{Name: refdata.DatasetSubdivisions, Source: "ISO 3166-2 via iso-codes " + g.srcVer["iso-codes"]}
	for _, s := range doc.List {
		country, _, _ := strings.Cut(s.Code, "-")
		parent := ""
		switch {
		case strings.Contains(s.Parent, "-"):
			parent = s.Parent
		case s.Parent != "":
			parent = country + "-" + s.Parent
		}
		t.Rows = append(t.Rows, []string{s.Code, country, s.Name, s.Type, parent})
	}
	return t, nil
}

type isoLanguage struct {
	Alpha3        string `json:"alpha_3"`
	Alpha2        string `json:"alpha_2"`
	Bibliographic string `json:"bibliographic"`
	Name          string `json:"name"`
	Scope         string `json:"scope"`
	Type          string `json:"type"`
}

func (g *generator) languages() (refdata.Table, error) {
	var l3 struct {
		List []isoLanguage `json:"639-3"`
	}
	var l2 struct {
		List []isoLanguage `json:"639-2"`
	}
	if err := readJSON(filepath.Join(g.c.isoCodes, "iso_639-3.json"), &l3); err != nil {
		return refdata.Table{}, err
	}
	if err := readJSON(filepath.Join(g.c.isoCodes, "iso_639-2.json"), &l2); err != nil {
		return refdata.Table{}, err
	}
	part2 := map[string]isoLanguage{}
	for _, l := range l2.List {
		part2[l.Alpha3] = l
	}
	t := refdata.Table{Name: refdata.DatasetLanguages, Source: "ISO 639-3 and 639-2 via iso-codes " + g.srcVer["iso-codes"]}
	in3 := map[string]bool{}
	for _, l := range l3.List {
		in3[l.Alpha3] = true
		p2, ok := part2[l.Alpha3]
		t2 := ""
		if ok {
			t2 = l.Alpha3
		}
		t.Rows = append(t.Rows, []string{l.Alpha3, p2.Bibliographic, t2, l.Alpha2, l.Name, l.Scope, l.Type})
	}
	for _, l := range l2.List {
		if !in3[l.Alpha3] && !strings.Contains(l.Alpha3, "-") {
			t.Rows = append(t.Rows, []string{l.Alpha3, l.Bibliographic, l.Alpha3, l.Alpha2, l.Name, "C", ""})
		}
	}
	return t, nil
}

// --- colours, zones

func (g *generator) colours() (refdata.Table, error) {
	src, err := os.ReadFile(filepath.Join(g.c.npm, "color-name/index.js"))
	if err != nil {
		return refdata.Table{}, err
	}
	re := regexp.MustCompile(`(?m)^\s*([a-z]+): \[(\d+), (\d+), (\d+)\],?$`)
	t := refdata.Table{Name: refdata.DatasetColours, Source: "CSS Color 4 named colours via color-name " + g.srcVer["color-name"] + " (MIT)"}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		var r, gr, b int
		fmt.Sscan(m[2]+" "+m[3]+" "+m[4], &r, &gr, &b)
		t.Rows = append(t.Rows, []string{m[1], fmt.Sprintf("#%02x%02x%02x", r, gr, b)})
	}
	if len(t.Rows) != 148 {
		return t, fmt.Errorf("color-name: found %d colours, want CSS Color 4's 148", len(t.Rows))
	}
	return t, nil
}

func (g *generator) zones() (refdata.Table, error) {
	data, err := os.ReadFile(filepath.Join(g.c.zoneinfo, "zone.tab"))
	if err != nil {
		return refdata.Table{}, err
	}
	t := refdata.Table{Name: refdata.DatasetZones, Source: "IANA tz zone.tab via Debian tzdata " + g.srcVer["tzdata"] + " (public domain)"}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		t.Rows = append(t.Rows, []string{f[0], f[2]})
	}
	return t, nil
}

// readCurated returns the rows of curated.tsv of one kind.
func readCurated(kind string) ([][]string, error) {
	data, err := os.ReadFile(filepath.Join("internal", "gen", "curated.tsv"))
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		if f[0] == kind {
			rows = append(rows, f)
		}
	}
	return rows, nil
}

// --- output

func (g *generator) write(b *refdata.Bundle) error {
	enc, err := b.Encode()
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // no name or time: reproducible
	zw.Write(enc)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(g.c.out, "builtin.bundle.gz"), gz.Bytes(), 0o644); err != nil {
		return err
	}
	type dataset struct {
		Name, Version, Source string
		Rows                  int
	}
	m := struct {
		Bundle          string
		Created         string
		SHA256          string `json:"sha256_uncompressed"`
		Bytes           int    `json:"bytes_uncompressed"`
		CompressedBytes int    `json:"bytes_compressed"`
		Sources         []source
		Datasets        []dataset
		Notes           []string
	}{Bundle: b.Version, Created: b.Created.Format(time.RFC3339), Bytes: len(enc), CompressedBytes: gz.Len(), Sources: g.sources, Notes: g.notes}
	sum := sha256.Sum256(enc)
	m.SHA256 = hex.EncodeToString(sum[:])
	for _, t := range b.Tables {
		m.Datasets = append(m.Datasets, dataset{t.Name, t.Version, t.Source, len(t.Rows)})
	}
	sort.Strings(m.Notes)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(g.c.out, "manifest.json"), append(out, '\n'), 0o644); err != nil {
		return err
	}
	// The notices the permissive licences ask to keep with copies of the data.
	for pkg, name := range map[string]string{"cldr-core": "LICENSE-CLDR", "currency-codes": "LICENSE-currency-codes", "color-name": "LICENSE-color-name"} {
		lic, err := os.ReadFile(filepath.Join(g.c.npm, pkg, "LICENSE"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(g.c.out, name), lic, 0o644); err != nil {
			return err
		}
	}
	return nil
}
