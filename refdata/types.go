package refdata

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotFound is wrapped by the error of every lookup that finds nothing.
var ErrNotFound = errors.New("refdata: not found")

// NotFoundError tells which lookup found nothing. errors.Is(err,
// ErrNotFound) holds for it.
type NotFoundError struct {
	Dataset string // such as "countries"
	Key     string // the code or name looked up
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("refdata: %s: no entry for %q", e.Dataset, e.Key)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// notFound is kept out of line so that the lookups that call it on their
// miss path stay small enough to inline.
//
//go:noinline
func notFound(dataset, key string) error { return &NotFoundError{Dataset: dataset, Key: key} }

// Date is a civil date without a time zone. The zero Date means "none"
// (an open start or end).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// MakeDate returns the date y-m-d.
func MakeDate(y int, m time.Month, d int) Date { return Date{y, m, d} }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	a, b := d.Year*10000+int(d.Month)*100+d.Day, e.Year*10000+int(e.Month)*100+e.Day
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String formats d as YYYY-MM-DD (YYYY or YYYY-MM when the source gives no
// more), and the zero Date as "".
func (d Date) String() string {
	switch {
	case d.IsZero():
		return ""
	case d.Month == 0:
		return fmt.Sprintf("%04d", d.Year)
	case d.Day == 0:
		return fmt.Sprintf("%04d-%02d", d.Year, d.Month)
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// ParseDate parses YYYY-MM-DD, YYYY-MM or YYYY; "" is the zero Date.
func ParseDate(s string) (Date, error) {
	if s == "" {
		return Date{}, nil
	}
	var d Date
	bad := fmt.Errorf("date %q: want YYYY-MM-DD, YYYY-MM or YYYY", s)
	n, err := strconv.Atoi(s[:min(4, len(s))])
	if err != nil || len(s) < 4 || n < 1 {
		return Date{}, bad
	}
	d.Year = n
	if len(s) >= 7 {
		m, err := strconv.Atoi(s[5:7])
		if err != nil || s[4] != '-' || m < 1 || m > 12 {
			return Date{}, bad
		}
		d.Month = time.Month(m)
	}
	if len(s) == 10 {
		day, err := strconv.Atoi(s[8:10])
		if err != nil || s[7] != '-' || day < 1 || day > 31 {
			return Date{}, bad
		}
		d.Day = day
	}
	if len(s) != 4 && len(s) != 7 && len(s) != 10 {
		return Date{}, bad
	}
	return d, nil
}

// Country is an ISO 3166-1 country or territory with an assigned code.
type Country struct {
	Alpha2       string // "HR"
	Alpha3       string // "HRV"
	Numeric      int    // 191; 0 when ISO assigns none
	Name         string // English short name (CLDR)
	OfficialName string // English official name, "" when it is the short name
}

// FormerCountry is an ISO 3166-3 entry: a code that was withdrawn.
type FormerCountry struct {
	Alpha4    string // ISO 3166-3 code, such as "ANHH"
	Alpha2    string // the withdrawn alpha-2 code, such as "AN"
	Alpha3    string
	Numeric   int
	Name      string
	Withdrawn Date
	Comment   string
}

// MinorUnits is a currency's ISO 4217 minor unit count, or one of the
// negative values below.
type MinorUnits int8

const (
	// MinorUnitsNA is ISO's "N.A.": the currency has no minor unit (gold, SDR…).
	MinorUnitsNA MinorUnits = -1
	// MinorUnitsUnlisted means the currency is not in ISO 4217 list one
	// (historic or not yet listed), so ISO states no minor units for it.
	MinorUnitsUnlisted MinorUnits = -2
)

// Currency is an ISO 4217 currency, current or historic.
//
// Two sources state how many decimals a currency has, and they differ (IQD:
// ISO 3, CLDR 0): ISOMinorUnits is ISO 4217's published minor unit;
// CLDRDigits and CLDRCashDigits are CLDR's advice for formatting amounts
// and cash amounts, with their rounding increments.
type Currency struct {
	Code             string // "EUR"
	Numeric          int    // 978; 0 when unknown
	Name             string // English name (CLDR, else ISO)
	ISOMinorUnits    MinorUnits
	CLDRDigits       int
	CLDRRounding     int
	CLDRCashDigits   int
	CLDRCashRounding int
	Historic         bool // no longer used by any country
	Until            Date // for historic currencies: last day of use, when known
}

// CurrencyUse says that a country used a currency from one date to another
// (CLDR), either bound open when the zero Date.
type CurrencyUse struct {
	Country  string
	Currency string
	From, To Date
	Tender   bool // legal tender
}

// ValidOn reports whether the use covers day d.
func (u CurrencyUse) ValidOn(d Date) bool {
	return (u.From.IsZero() || u.From.Compare(d) <= 0) && (u.To.IsZero() || d.Compare(u.To) <= 0)
}

// Subdivision is an ISO 3166-2 subdivision.
type Subdivision struct {
	Code    string // "HR-21"
	Country string // "HR"
	Name    string
	Type    string // "City", "County"…
	Parent  string // code of the parent subdivision, "" for none
}

// Language is an ISO 639 language (639-3 individual languages and
// macrolanguages, plus ISO 639-2 collective codes).
type Language struct {
	Code   string // ISO 639-3 (or 639-2 for collectives), "hrv"
	Part2B string // ISO 639-2/B when it differs, "" otherwise
	Part2T string // ISO 639-2/T, "" when none
	Part1  string // ISO 639-1, "hr"; "" when none
	Name   string
	Scope  string // I(ndividual), M(acrolanguage), S(pecial), C(ollective)
	Type   string // L(iving), E(xtinct), A(ncient), H(istorical), C(onstructed), S(pecial)
}

// Colour is a CSS Color 4 named colour.
type Colour struct {
	Name    string // lower case, "rebeccapurple"
	R, G, B uint8
}

// Hex returns the colour as #rrggbb.
func (c Colour) Hex() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// DatasetInfo describes one dataset of a snapshot.
type DatasetInfo struct {
	Name    string
	Version string
	Source  string // upstream sources, versions and licences
	Rows    int
}
