// Package types is the value model of streaming SQL: SQL types, a small
// tagged Value, comparison, key and binary encodings, and JSON decoding of
// event data into declared columns.
//
//	d := types.NewDecoder([]types.Column{{Name: "id", Type: types.StringT}, {Name: "n", Type: types.BigintT}})
//	row := make([]types.Value, 2)
//	errs := d.Decode([]byte(`{"id":"a","n":"x"}`), row, nil) // row = [a, NULL], one DecodeError
package types
