package natspubsub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// The CloudEvents NATS protocol binding, binary content mode (spec
// cloudevents/bindings/nats-protocol-binding.md, 1.0.3): every attribute,
// extensions included, travels as a header named "ce-" + the attribute's
// name, datacontenttype too ("ce-datacontenttype"); values are
// percent-encoded; the data is the payload.
const (
	headerPrefix = "ce-"
	// keyAttribute carries driver.Message.Key: the CloudEvents
	// partitioning extension.
	keyAttribute = "partitionkey"
	// contentTypeHeader is read, never written: some producers put
	// datacontenttype in it as the HTTP binding does.
	contentTypeHeader = "content-type"
)

// encodeHeaders maps attributes and key to NATS headers.
func encodeHeaders(attrs map[string]string, key string) nats.Header {
	h := make(nats.Header, len(attrs)+2)
	for name, value := range attrs {
		h[headerPrefix+name] = []string{encodeValue(value)}
	}
	if key != "" {
		h[headerPrefix+keyAttribute] = []string{encodeValue(key)}
	}
	return h
}

// decodeHeaders maps NATS headers back to attributes and key. Header names
// are matched without regard to case, as NATS headers are. A value that is
// not valid percent-encoding is passed on as it came, for package pubsub
// to judge.
func decodeHeaders(h nats.Header) (attrs map[string]string, key string) {
	attrs = make(map[string]string, len(h))
	var contentType string
	for name, values := range h {
		if len(values) == 0 {
			continue
		}
		lower := strings.ToLower(name)
		if lower == contentTypeHeader {
			contentType = decodeValue(values[0])
			continue
		}
		attr, ok := strings.CutPrefix(lower, headerPrefix)
		if !ok || attr == "" {
			continue
		}
		attrs[attr] = decodeValue(values[0])
	}
	if _, ok := attrs["datacontenttype"]; !ok && contentType != "" {
		attrs["datacontenttype"] = contentType
	}
	key = attrs[keyAttribute]
	delete(attrs, keyAttribute)
	return attrs, key
}

// encodeValue percent-encodes space, double quote, percent and every byte
// outside printable ASCII, with upper-case hex digits, as the binding
// requires.
func encodeValue(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if mustEncode(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if mustEncode(c) {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func mustEncode(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// decodeValue undoes a quoted string (older producers) and then one round
// of percent-encoding, accepting lower-case hex digits. It returns v as it
// is when v is not valid: a bad escape, or bytes that are not UTF-8.
func decodeValue(v string) string {
	s := v
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		unq, err := unquote(s[1 : len(s)-1])
		if err != nil {
			return v
		}
		s = unq
	}
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return v
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return v
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return v
	}
	return string(b)
}

// unquote undoes the backslash escapes of an RFC 7230 quoted string's
// content.
func unquote(s string) (string, error) {
	if !strings.ContainsAny(s, `\"`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", errors.New("trailing backslash")
			}
			i++
		case '"':
			return "", errors.New("unescaped double quote")
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// msgID is the Nats-Msg-Id of m: the first 128 bits of SHA-256 over its
// driver.DedupKey (source, id, and the requeue count of a requeued
// message), in hex. The same message always gives the same ID, so
// JetStream drops a retried publish within the stream's duplicate window.
// ok is false when m has no source or no id.
func msgID(m *driver.Message) (string, bool) {
	if m.Attributes["source"] == "" || m.Attributes["id"] == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(driver.DedupKey(m)))
	return hex.EncodeToString(sum[:16]), true
}
