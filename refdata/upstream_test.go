package refdata_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/refdata"
)

// These tests compare the compiled-in data with the upstream files that
// Debian installs (iso-codes, tzdata). They skip where the files are absent.

func readUpstream(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("%s is not installed (apt-get install iso-codes tzdata)", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestUpstreamISO3166(t *testing.T) {
	var doc struct {
		Countries []struct {
			Alpha2  string `json:"alpha_2"`
			Alpha3  string `json:"alpha_3"`
			Numeric string `json:"numeric"`
		} `json:"3166-1"`
	}
	if err := json.Unmarshal(readUpstream(t, "/usr/share/iso-codes/json/iso_3166-1.json"), &doc); err != nil {
		t.Fatal(err)
	}
	s := refdata.Default()
	n := 0
	for range s.Countries() {
		n++
	}
	if n != len(doc.Countries) {
		t.Errorf("%d countries, upstream has %d", n, len(doc.Countries))
	}
	for _, u := range doc.Countries {
		c, err := s.Country(u.Alpha2)
		if err != nil || c.Alpha3 != u.Alpha3 {
			t.Errorf("%s: got %+v, %v; upstream alpha-3 %s", u.Alpha2, c, err, u.Alpha3)
		}
		if c, err := s.CountryByNumeric(atoi(u.Numeric)); err != nil || c.Alpha2 != u.Alpha2 {
			t.Errorf("numeric %s: got %+v, %v; upstream %s", u.Numeric, c, err, u.Alpha2)
		}
	}
}

func TestUpstreamISO3166_2(t *testing.T) {
	var doc struct {
		Subdivisions []struct{ Code, Name, Type string } `json:"3166-2"`
	}
	if err := json.Unmarshal(readUpstream(t, "/usr/share/iso-codes/json/iso_3166-2.json"), &doc); err != nil {
		t.Fatal(err)
	}
	s := refdata.Default()
	for _, u := range doc.Subdivisions {
		sub, err := s.Subdivision(u.Code)
		if err != nil || sub.Name != u.Name || sub.Type != u.Type {
			t.Errorf("%s: got %+v, %v; upstream %q %q", u.Code, sub, err, u.Name, u.Type)
		}
	}
}

func TestUpstreamZoneTab(t *testing.T) {
	s := refdata.Default()
	for _, line := range strings.Split(string(readUpstream(t, "/usr/share/zoneinfo/zone.tab")), "\n") {
		f := strings.Split(line, "\t")
		if strings.HasPrefix(line, "#") || len(f) < 3 {
			continue
		}
		zones, err := s.TimeZones(f[0])
		if err != nil || !contains(zones, f[2]) {
			t.Errorf("%s %s: got %v, %v", f[0], f[2], zones, err)
		}
	}
}

func TestColours(t *testing.T) {
	s := refdata.Default()
	n := 0
	for range s.Colours() {
		n++
	}
	if n != 148 {
		t.Errorf("%d named colours, CSS Color 4 has 148", n)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
