package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

// FuzzAppend feeds arbitrary stream names, event types and payloads to
// Append: each is either rejected with an *InvalidError and nothing written,
// or committed and read back unchanged.
func FuzzAppend(f *testing.F) {
	f.Add("order-1", "OrderPlaced", []byte(`{"total":42}`), []byte(nil))
	f.Add("", "T", []byte{}, []byte(nil))
	f.Add("$all", "T", []byte{}, []byte(nil))
	f.Add("a\x00b", "T", []byte{}, []byte(nil))
	f.Add("ok", "", []byte{1}, []byte{2})
	f.Add("ok", "bad\ntype", []byte{}, []byte(nil))
	f.Add("\xff\xfe", "T", []byte{}, []byte(nil))
	f.Add("ünïcødé-1", "Tÿpe", []byte("\x00\x01"), []byte(`{"m":1}`))
	f.Fuzz(func(t *testing.T, stream, typ string, data, meta []byte) {
		ctx := context.Background()
		s := eventstore.New(memstore.New(), &eventstore.Options{Limits: eventstore.Limits{MaxStreamName: 64, MaxEventType: 64, MaxEventSize: 4096}})
		defer s.Close()
		res, err := s.Append(ctx, eventstore.StreamID(stream), eventstore.Any,
			eventstore.Event{Type: typ, Data: data, Metadata: meta})
		if err != nil {
			var ie *eventstore.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, eventstore.ErrInvalid) {
				t.Fatalf("Append(%q, %q): got %v, want an *InvalidError", stream, typ, err)
			}
			if h, _ := s.Head(ctx); h != 0 {
				t.Fatalf("Append(%q, %q) was rejected (%v) but the head moved to %d", stream, typ, err, h)
			}
			return
		}
		n := 0
		for e, err := range s.ReadStream(ctx, eventstore.StreamID(stream), eventstore.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if e.Type != typ || !bytes.Equal(e.Data, data) || !bytes.Equal(e.Metadata, meta) || e.Position != res.Position {
				t.Fatalf("read back %+v, appended type %q data %q metadata %q at %d", e, typ, data, meta, res.Position)
			}
		}
		if n != 1 {
			t.Fatalf("read %d events back, want 1", n)
		}
	})
}
