package refdata_test

import (
	"errors"
	"fmt"

	"github.com/fjord-data/fjord/refdata"
)

func Example() {
	reg := refdata.NewRegistry(nil) // the compiled-in data
	s := reg.Current()

	tr, _ := s.Country("TR")
	sz, _ := s.CountryByName("swaziland")
	hr, _ := s.CurrencyOn("HR", refdata.MakeDate(2023, 1, 1))
	iqd, _ := s.Currency("IQD")
	fmt.Println(tr.Name, sz.Name, hr.Code)
	fmt.Printf("IQD: ISO minor units %d, CLDR digits %d\n", iqd.ISOMinorUnits, iqd.CLDRDigits)

	_, err := s.Country("XX")
	fmt.Println(errors.Is(err, refdata.ErrNotFound), err)
	// Output:
	// Türkiye Eswatini EUR
	// IQD: ISO minor units 3, CLDR digits 0
	// true refdata: countries: no entry for "XX"
}
