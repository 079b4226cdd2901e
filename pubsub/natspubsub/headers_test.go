package natspubsub

import (
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// The cases follow the CloudEvents NATS protocol binding, section 3.1.3.2.
func TestHeaderValues(t *testing.T) {
	tests := []struct {
		name, value, encoded string
	}{
		{"plain", "shop.order.placed", "shop.order.placed"},
		{"spec example", "Euro \u20ac \U0001F600", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"quote and percent", `100% "sure"`, "100%25%20%22sure%22"},
		{"control and DEL", "a\tb\x7f", "a%09b%7F"},
		{"printable ASCII kept", "!#$&'()*+,-./:;<=>?@[\\]^_`{|}~", "!#$&'()*+,-./:;<=>?@[\\]^_`{|}~"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encodeValue(tt.value); got != tt.encoded {
				t.Errorf("encodeValue(%q) = %q, want %q", tt.value, got, tt.encoded)
			}
			if got := decodeValue(tt.encoded); got != tt.value {
				t.Errorf("decodeValue(%q) = %q, want %q", tt.encoded, got, tt.value)
			}
		})
	}
}

func TestDecodeValue(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"lower-case hex", "Euro%20%e2%82%ac", "Euro \u20ac"},
		{"needlessly encoded", "%41%42", "AB"},
		{"quoted string of an older producer", `"a b \"c\""`, `a b "c"`},
		{"quoted and encoded", `"a%20b"`, "a b"},
		// Invalid encodings are passed on as they came.
		{"overlong UTF-8", "%C0%A0", "%C0%A0"},
		{"truncated escape", "abc%4", "abc%4"},
		{"bad hex digit", "%G1", "%G1"},
		{"bad quoted string", `"a"b"`, `"a"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeValue(tt.header); got != tt.want {
				t.Errorf("decodeValue(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	attrs := map[string]string{"id": "1", "source": "/shop", "specversion": "1.0", "type": "t",
		"datacontenttype": "application/json", "time": "2026-11-25T10:00:00Z", "traceparent": "00-ab-cd-01"}
	h := encodeHeaders(attrs, "order 1")
	want := nats.Header{"ce-id": {"1"}, "ce-source": {"/shop"}, "ce-specversion": {"1.0"}, "ce-type": {"t"},
		"ce-datacontenttype": {"application/json"}, "ce-time": {"2026-11-25T10:00:00Z"},
		"ce-traceparent": {"00-ab-cd-01"}, "ce-partitionkey": {"order%201"}}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("encodeHeaders (-want +got):\n%s", diff)
	}
	gotAttrs, gotKey := decodeHeaders(h)
	if diff := cmp.Diff(attrs, gotAttrs); diff != "" || gotKey != "order 1" {
		t.Errorf("decodeHeaders: key %q, attributes (-want +got):\n%s", gotKey, diff)
	}

	// Names are case-insensitive; Content-Type stands in for a missing
	// ce-datacontenttype; other headers are not attributes.
	gotAttrs, gotKey = decodeHeaders(nats.Header{"CE-ID": {"1"}, "Ce-Source": {"/s"}, "Content-Type": {"text/plain"},
		"Nats-Msg-Id": {"x"}, "ce-": {"empty name"}})
	want2 := map[string]string{"id": "1", "source": "/s", "datacontenttype": "text/plain"}
	if diff := cmp.Diff(want2, gotAttrs); diff != "" || gotKey != "" {
		t.Errorf("decodeHeaders of mixed case: key %q, attributes (-want +got):\n%s", gotKey, diff)
	}
}

func TestMsgID(t *testing.T) {
	m := func(source, id, requeued string) *driver.Message {
		a := map[string]string{"source": source, "id": id}
		if requeued != "" {
			a[driver.RequeueAttribute] = requeued
		}
		return &driver.Message{Attributes: a}
	}
	a, _ := msgID(m("/shop", "1", ""))
	b, _ := msgID(m("/shop", "1", ""))
	shifted, _ := msgID(m("/sho", "p1", ""))
	requeued, _ := msgID(m("/shop", "1", "1"))
	if a != b || a == shifted || a == requeued || len(a) != 32 {
		t.Errorf("msgID: same message %q and %q, shifted %q, requeued %q; want equal, distinct, distinct, 32 hex digits",
			a, b, shifted, requeued)
	}
	if id, ok := msgID(m("/shop", "", "")); ok || id != "" {
		t.Error("msgID without an id gave an ID")
	}
}

// FuzzHeaderValue: decoding undoes encoding, encoded values are printable
// ASCII without space, quote or stray percent, and decoding never fails on
// any input.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"", "plain", "Euro \u20ac \U0001F600", `100% "sure"`, "%C0%A0", `"a \"b\""`, "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := decodeValue(s) // any input
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Errorf("decodeValue(%q) = %q: not UTF-8", s, got)
		}
		if !utf8.ValidString(s) {
			return
		}
		enc := encodeValue(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c <= ' ' || c >= 0x7f || c == '"' {
				t.Fatalf("encodeValue(%q) = %q: byte %q is not allowed", s, enc, c)
			}
		}
		if dec := decodeValue(enc); dec != s {
			t.Errorf("decodeValue(encodeValue(%q)) = %q", s, dec)
		}
	})
}
