package pubsub

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// FuzzFromDriver decodes arbitrary driver attributes: fromDriver never
// panics, refuses with an *InvalidMessageError, or returns a valid message
// that survives toDriver and fromDriver unchanged. The seed corpus is in
// testdata/fuzz/FuzzFromDriver.
func FuzzFromDriver(f *testing.F) {
	f.Add("1.0", "id-1", "/shop", "order.placed", "order/1", "2026-11-25T10:11:12.5Z", "application/json", "traceparent", "00-abc-01", "k", "", []byte(`{"a":1}`))
	f.Add("1.0", "", "/shop", "t", "", "", "", "", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, subject, tm, dct, extName, extValue, key, partitionKey string, data []byte) {
		attrs := map[string]string{"specversion": spec, "id": id, "source": source, "type": typ}
		for name, v := range map[string]string{"subject": subject, "time": tm, "datacontenttype": dct, "partitionkey": partitionKey} {
			if v != "" {
				attrs[name] = v
			}
		}
		if extName != "" {
			attrs[extName] = extValue
		}
		dm := &driver.Message{Attributes: attrs, Key: key, Data: data}
		m, err := fromDriver(dm)
		if err != nil {
			var ie *InvalidMessageError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("fromDriver error %T %v is not an *InvalidMessageError", err, err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("fromDriver returned an invalid message: %v", err)
		}
		if !bytes.Equal(m.Data, data) {
			t.Fatalf("data changed")
		}
		again, err := fromDriver(m.toDriver())
		if err != nil {
			t.Fatalf("a decoded message does not decode again: %v", err)
		}
		want := *m
		want.Key = m.OrderKey()
		if diff := cmp.Diff(&want, again, cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(0)); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
