package refdata_test

import (
	"bytes"
	"testing"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// FuzzDecodeBundle checks that the decoder never panics, that whatever it
// accepts encodes back to the same bytes (one content, one signed form),
// and that validating it against the compiled-in data does not panic.
// Seeds live in testdata/fuzz/FuzzDecodeBundle.
func FuzzDecodeBundle(f *testing.F) {
	f.Add([]byte("=fjord-refdata-bundle 1\n=version 1\n=created 2026-11-26T00:00:00Z\n=end\n"))
	base := refdata.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := refdata.DecodeBundle(data)
		if err != nil {
			return
		}
		again, err := b.Encode()
		if err != nil {
			t.Fatalf("decoded but cannot encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded %q but encodes to %q", data, again)
		}
		_, _ = refdata.Validate(base, b)
		_ = rollout.Verify(b)
	})
}
