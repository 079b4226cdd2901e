package refdata_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/refdata"
)

// Facts that other libraries get wrong, checked against the compiled-in data.

func TestCountryFacts(t *testing.T) {
	s := refdata.Default()
	tests := []struct {
		lookup string
		get    func() (refdata.Country, error)
		want   string // alpha-2 and name
	}{
		{"alpha2 TR", func() (refdata.Country, error) { return s.Country("TR") }, "TR Türkiye"},
		{"alpha2 lower case", func() (refdata.Country, error) { return s.Country("tr") }, "TR Türkiye"},
		{"alpha3 SWZ", func() (refdata.Country, error) { return s.CountryByAlpha3("swz") }, "SZ Eswatini"},
		{"numeric 191", func() (refdata.Country, error) { return s.CountryByNumeric(191) }, "HR Croatia"},
		{"name turkey", func() (refdata.Country, error) { return s.CountryByName("turkey") }, "TR Türkiye"},
		{"name Türkiye", func() (refdata.Country, error) { return s.CountryByName("Türkiye") }, "TR Türkiye"},
		{"name TURKIYE", func() (refdata.Country, error) { return s.CountryByName("TURKIYE") }, "TR Türkiye"},
		{"name swaziland", func() (refdata.Country, error) { return s.CountryByName("swaziland") }, "SZ Eswatini"},
		{"name ivory coast", func() (refdata.Country, error) { return s.CountryByName("Ivory Coast") }, "CI Côte d’Ivoire"},
		{"name cote d'ivoire", func() (refdata.Country, error) { return s.CountryByName("cote d'ivoire") }, "CI Côte d’Ivoire"},
		{"name czech republic", func() (refdata.Country, error) { return s.CountryByName("czech republic") }, "CZ Czechia"},
		{"official name", func() (refdata.Country, error) { return s.CountryByName("Republic of Croatia") }, "HR Croatia"},
		{"name with spaces", func() (refdata.Country, error) { return s.CountryByName("  north   macedonia ") }, "MK North Macedonia"},
	}
	for _, tt := range tests {
		t.Run(tt.lookup, func(t *testing.T) {
			c, err := tt.get()
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Alpha2 + " " + c.Name; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	s := refdata.Default()
	lookups := map[string]func() error{
		"country ZZ":          func() error { _, err := s.Country("ZZ"); return err },
		"country empty":       func() error { _, err := s.Country(""); return err },
		"country digits":      func() error { _, err := s.Country("1@"); return err },
		"alpha3 XXX":          func() error { _, err := s.CountryByAlpha3("XXX"); return err },
		"numeric 999":         func() error { _, err := s.CountryByNumeric(999); return err },
		"name atlantis":       func() error { _, err := s.CountryByName("Atlantis"); return err },
		"currency ABC":        func() error { _, err := s.Currency("ABC"); return err },
		"subdivision HR-99":   func() error { _, err := s.Subdivision("HR-99"); return err },
		"language qqq":        func() error { _, err := s.Language("qqz"); return err },
		"colour":              func() error { _, err := s.Colour("blurple"); return err },
		"zones":               func() error { _, err := s.TimeZones("QQ"); return err },
		"currency on, before": func() error { _, err := s.CurrencyOn("HR", refdata.MakeDate(1900, 1, 1)); return err },
		"former":              func() error { _, err := s.FormerCountry("QQQQ"); return err },
		"dataset":             func() error { _, err := s.Dataset("planets"); return err },
	}
	for name, f := range lookups {
		t.Run(name, func(t *testing.T) {
			err := f()
			var nf *refdata.NotFoundError
			if !errors.Is(err, refdata.ErrNotFound) || !errors.As(err, &nf) {
				t.Fatalf("got %v, want a NotFoundError", err)
			}
		})
	}
}

func TestCroatiaCurrency(t *testing.T) {
	s := refdata.Default()
	tests := []struct {
		day  refdata.Date
		want string
	}{
		{refdata.MakeDate(1993, time.June, 1), "HRD"},
		{refdata.MakeDate(2022, time.December, 31), "HRK"},
		{refdata.MakeDate(2023, time.January, 1), "EUR"},
		{refdata.MakeDate(2023, time.January, 10), "EUR"}, // the kuna was still legal tender
		{refdata.MakeDate(2026, time.November, 25), "EUR"},
	}
	for _, tt := range tests {
		c, err := s.CurrencyOn("HR", tt.day)
		if err != nil {
			t.Fatal(err)
		}
		if c.Code != tt.want {
			t.Errorf("Croatia on %s: got %s, want %s", tt.day, c.Code, tt.want)
		}
	}
	uses, err := s.CurrencyUses("HR")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]string{}
	for _, u := range uses {
		got[u.Currency] = [2]string{u.From.String(), u.To.String()}
	}
	want := map[string][2]string{
		"EUR": {"2023-01-01", ""}, "HRK": {"1994-05-30", "2023-01-14"}, "HRD": {"1991-12-23", "1995-01-01"},
		"YUN": {"1990-01-01", "1991-12-23"}, "YUD": {"1966-01-01", "1990-01-01"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Croatia's currencies (-want +got):\n%s", d)
	}
}

func TestCurrencyFacts(t *testing.T) {
	s := refdata.Default()
	type facts struct {
		Numeric              int
		ISO                  refdata.MinorUnits
		CLDRDigits, CLDRCash int
		Historic             bool
		Until                string
	}
	tests := map[string]facts{
		"IQD": {368, 3, 0, 0, false, ""}, // ISO 3 minor units, CLDR formats with 0
		"IRR": {364, 2, 0, 0, false, ""},
		"LAK": {418, 2, 0, 0, false, ""},
		"SLE": {925, 2, 2, 2, false, ""},
		"ZWG": {924, 2, 2, 2, false, ""},
		"XCG": {532, 2, 2, 2, false, ""},
		"ANG": {532, 2, 2, 2, true, "2025-06-30"},
		"HRK": {191, refdata.MinorUnitsUnlisted, 2, 2, true, "2023-01-14"},
		"CHF": {756, 2, 2, 2, false, ""},
		"XAU": {959, refdata.MinorUnitsNA, 2, 2, false, ""},
		"EUR": {978, 2, 2, 2, false, ""},
	}
	for code, want := range tests {
		c, err := s.Currency(code)
		if err != nil {
			t.Fatal(err)
		}
		got := facts{c.Numeric, c.ISOMinorUnits, c.CLDRDigits, c.CLDRCashDigits, c.Historic, c.Until.String()}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", code, d)
		}
	}
	if c, err := s.CurrencyByNumeric(532); err != nil || c.Code != "XCG" {
		t.Errorf("numeric 532: got %v, %v; want XCG (ANG is historic)", c.Code, err)
	}
}

func TestOtherDatasets(t *testing.T) {
	s := refdata.Default()
	sub, err := s.Subdivision("az-bab")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(refdata.Subdivision{Code: "AZ-BAB", Country: "AZ", Name: "Babək", Type: "Rayon", Parent: "AZ-NX"}, sub); d != "" {
		t.Errorf("AZ-BAB (-want +got):\n%s", d)
	}
	n := 0
	for range s.Subdivisions("HR") {
		n++
	}
	if n != 21 {
		t.Errorf("Croatia has %d subdivisions, want 21", n)
	}
	for _, code := range []string{"hr", "hrv", "HRV"} {
		l, err := s.Language(code)
		if err != nil || l.Name != "Croatian" || l.Part1 != "hr" {
			t.Errorf("language %s: got %+v, %v", code, l, err)
		}
	}
	if l, err := s.Language("ger"); err != nil || l.Code != "deu" { // 639-2/B
		t.Errorf("language ger: got %+v, %v", l, err)
	}
	c, err := s.Colour("RebeccaPurple")
	if err != nil || c.Hex() != "#663399" {
		t.Errorf("rebeccapurple: got %v, %v", c, err)
	}
	z, err := s.TimeZones("hr")
	if d := cmp.Diff([]string{"Europe/Zagreb"}, z); err != nil || d != "" {
		t.Errorf("zones of HR: %v %s", err, d)
	}
	f, err := s.FormerCountry("AN")
	if err != nil || f.Alpha4 != "ANHH" || f.Withdrawn.String() != "2010-12-15" {
		t.Errorf("former AN: got %+v, %v", f, err)
	}
	for _, d := range s.Datasets() {
		if d.Version == "" || d.Source == "" || d.Rows == 0 {
			t.Errorf("dataset %+v lacks a version, source or rows", d)
		}
	}
}
