package refdata

import (
	"bytes"
	"compress/gzip"
	_ "embed" // the compiled-in datasets
	"fmt"
	"io"
	"sync"
)

//go:generate go run ./internal/gen -out data -version 2026.11.25.1 -created 2026-11-25T00:00:00Z

// builtinBundle is the compiled-in bundle, gzip-compressed. A string, so
// that it cannot be modified.
//
//go:embed data/builtin.bundle.gz
var builtinBundle string

// builtin decodes the compiled-in bundle once, on first use, so that
// importing the package costs nothing at start-up. The result is immutable.
var builtin = sync.OnceValues(func() (*Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader([]byte(builtinBundle)))
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	b, err := DecodeBundle(data)
	if err != nil {
		return nil, err
	}
	return FromBundle(b)
})

// Default returns the compiled-in snapshot: the datasets generated from
// the upstream sources named in MANIFEST.md when this module was built. It
// is decoded on the first call (a few milliseconds) and shared afterwards;
// like every Snapshot it is immutable. Services that take run-time
// updates hold a Registry instead and ask it for Current.
func Default() *Snapshot {
	s, err := builtin()
	if err != nil {
		panic(fmt.Sprintf("refdata: the compiled-in data is corrupt: %v", err))
	}
	return s
}

// FromBundle builds a snapshot from a bundle that carries every dataset.
// It checks the bundle's shape and references, not its signature.
func FromBundle(b *Bundle) (*Snapshot, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var tables [numDatasets]*Table
	for i := range b.Tables {
		if idx := schemaIndex(b.Tables[i].Name); idx < numDatasets {
			t := b.Tables[i]
			tables[idx] = &t
		}
	}
	s, err := build(b.Version, b.Created, tables, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.checkReferences(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s, nil
}
