package kafkapubsub

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
)

func TestFromRecord(t *testing.T) {
	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name string
		rec  kgo.Record
		want driver.Message
	}{
		{"binary mode", kgo.Record{Key: []byte("k"), Value: []byte("d"), Timestamp: ts,
			Headers: h("ce_id", "1", "ce_specversion", "1.0", "content-type", "text/plain", "ce_partitionkey", "k")},
			driver.Message{Attributes: map[string]string{"id": "1", "specversion": "1.0", "datacontenttype": "text/plain"},
				Key: "k", Data: []byte("d"), PublishTime: ts}},
		{"headers of other producers: case-insensitive prefix, foreign headers left out", kgo.Record{
			Headers: h("CE_ID", "1", "Content-Type", "a/b", "traceid", "x", "ce_", "empty name")},
			driver.Message{Attributes: map[string]string{"id": "1", "datacontenttype": "a/b"}}},
		{"no record key: the partitionkey extension is the key", kgo.Record{Headers: h("ce_partitionkey", "pk")},
			driver.Message{Attributes: map[string]string{}, Key: "pk"}},
		{"a partitionkey other than the record key stays an attribute", kgo.Record{Key: []byte("k"), Headers: h("ce_partitionkey", "pk")},
			driver.Message{Attributes: map[string]string{"partitionkey": "pk"}, Key: "k"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.rec.Topic, tc.rec.Partition, tc.rec.Offset = "t", 2, 7
			got := fromRecord(&tc.rec)
			tc.want.AckID = ackID{"t", 2, 7}
			if diff := cmp.Diff(&tc.want, got, cmp.AllowUnexported(ackID{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("fromRecord (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzFromRecord checks that mapping any record is total and stable: what
// fromRecord makes of a record, toRecord writes and fromRecord reads back
// the same. headers is "key=value" lines.
func FuzzFromRecord(f *testing.F) {
	f.Add([]byte("k"), []byte("data"), "ce_id=1\nce_specversion=1.0\ncontent-type=application/json\nce_partitionkey=k")
	f.Add([]byte(nil), []byte(nil), "CE_Type=t\nce_partitionkey=pk\nother=x")
	f.Add([]byte("k"), []byte{0xff}, "ce_partitionkey=other\nce_=\ncontent-type=")
	f.Fuzz(func(t *testing.T, key, value []byte, headers string) {
		r := &kgo.Record{Topic: "t", Key: key, Value: value}
		for line := range strings.SplitSeq(headers, "\n") {
			k, v, _ := strings.Cut(line, "=")
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		first := fromRecord(r)
		for name := range first.Attributes {
			if name == "" || name != strings.ToLower(name) {
				t.Fatalf("attribute name %q is empty or not lower case", name)
			}
		}
		back := toRecord("t", first)
		back.Topic = "t"
		second := fromRecord(back)
		if diff := cmp.Diff(first, second, cmp.AllowUnexported(ackID{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("fromRecord(toRecord(fromRecord(r))) differs (-first +second):\n%s", diff)
		}
	})
}
