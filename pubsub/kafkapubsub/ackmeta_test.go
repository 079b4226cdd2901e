package kafkapubsub

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAckMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		committed int64
		spans     []span
		want      string
	}{
		{"none", 5, nil, ""},
		{"one", 10, []span{{11, 13}}, "fjord1;1:2"},
		{"several", 10, []span{{11, 13}, {16, 17}}, "fjord1;1:2,3:1"},
		{"first at the committed offset", 0, []span{{0, 4}}, "fjord1;0:4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := encodeAckMeta(tc.committed, tc.spans)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("encode (-want +got):\n%s", diff)
			}
			back, err := decodeAckMeta(tc.committed, got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.spans, back, cmp.AllowUnexported(span{})); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAckMetaTruncates(t *testing.T) {
	var spans []span
	for i := range int64(2000) {
		spans = append(spans, span{10 + 3*i, 11 + 3*i})
	}
	meta := encodeAckMeta(0, spans)
	if len(meta) > maxAckMetaBytes {
		t.Fatalf("metadata is %d bytes, more than %d", len(meta), maxAckMetaBytes)
	}
	back, err := decodeAckMeta(0, meta)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) == 0 || len(back) >= len(spans) {
		t.Fatalf("kept %d of %d spans, want a non-empty prefix", len(back), len(spans))
	}
	if diff := cmp.Diff(spans[:len(back)], back, cmp.AllowUnexported(span{})); diff != "" {
		t.Errorf("kept spans are not a prefix (-want +got):\n%s", diff)
	}
}

func TestAckMetaRejects(t *testing.T) {
	for _, meta := range []string{
		"fjord1;", "fjord1;1", "fjord1;1:", "fjord1;x:1", "fjord1;1:0", "fjord1;-1:2",
		"fjord1;1:2,0:1", "fjord1;1:2,,", "fjord1;9223372036854775807:1",
		"fjord1;" + strings.Repeat("1:1,", 1000) + "1:1",
	} {
		if _, err := decodeAckMeta(100, meta); !errors.Is(err, errAckMeta) {
			t.Errorf("decodeAckMeta(%q) = %v, want errAckMeta", meta, err)
		}
	}
	for _, meta := range []string{"", "member-1", "fjord2;1:1"} {
		if spans, err := decodeAckMeta(100, meta); err != nil || spans != nil {
			t.Errorf("decodeAckMeta(%q) = %v, %v, want nothing (not Fjord's)", meta, spans, err)
		}
	}
}

// FuzzAckMeta checks that decoding never panics and that whatever decodes
// encodes back to the same string.
func FuzzAckMeta(f *testing.F) {
	f.Add(int64(0), "fjord1;1:2,3:1")
	f.Add(int64(42), "fjord1;0:4")
	f.Add(int64(7), "member-1")
	f.Fuzz(func(t *testing.T, committed int64, meta string) {
		if committed < 0 {
			return
		}
		spans, err := decodeAckMeta(committed, meta)
		if err != nil || spans == nil {
			return
		}
		for i, s := range spans {
			if s.lo < committed || s.hi <= s.lo || (i > 0 && s.lo <= spans[i-1].hi) {
				t.Fatalf("decodeAckMeta(%d, %q) = %v: span %d is out of order", committed, meta, spans, i)
			}
		}
		if got := encodeAckMeta(committed, spans); got != meta {
			t.Fatalf("encode(decode(%q)) = %q", meta, got)
		}
	})
}
