package httpcache

import (
	"strconv"
	"strings"
	"time"
)

// maxDelta is the largest delta-seconds value a cache keeps (RFC 9111
// section 1.2.2: larger values are replaced by 2^31).
const maxDelta = 2147483648

// Delta is a delta-seconds directive value. The zero Delta is absent.
type Delta struct {
	Seconds int64 // 0..2^31
	Set     bool
}

// Duration returns the value as a time.Duration (0 when absent).
func (d Delta) Duration() time.Duration { return time.Duration(d.Seconds) * time.Second }

// CacheControl is a parsed Cache-Control field (RFC 9111 section 5.2,
// RFC 5861), of a request or a response. The zero value has no directives.
// Directives this package does not use are dropped.
type CacheControl struct {
	MaxAge               Delta
	SMaxAge              Delta // parsed, but ignored by this private cache
	MaxStale             Delta // request; "max-stale" without a value is Seconds = 2^31
	MinFresh             Delta // request
	StaleWhileRevalidate Delta // response, RFC 5861
	StaleIfError         Delta // request or response, RFC 5861

	NoStore         bool
	NoCache         bool // qualified no-cache="fields" is treated as unqualified
	Private         bool
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	NoTransform     bool
	Immutable       bool
	OnlyIfCached    bool // request
	MustUnderstand  bool
}

// ParseCacheControl parses the lines of a Cache-Control field, as
// h.Values("Cache-Control") returns them. It never fails: malformed parts
// are skipped, except that a max-age or s-maxage whose value is not a
// number counts as 0 (the response is stale, RFC 9111 section 4.2.1). When
// a directive repeats, its first occurrence wins. Names are
// case-insensitive; values may be tokens or quoted strings.
func ParseCacheControl(lines ...string) CacheControl {
	var cc CacheControl
	var seen uint32
	for _, line := range lines {
		for len(line) > 0 {
			var name, value string
			var hasValue bool
			name, value, hasValue, line = nextDirective(line)
			cc.apply(name, value, hasValue, &seen)
		}
	}
	return cc
}

// nextDirective splits the first directive off s: its lower-cased name (or
// "" when malformed), its value with quotes removed, and the rest of s after
// the separating comma.
func nextDirective(s string) (name, value string, hasValue bool, rest string) {
	s = trimOWS(s)
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	name = s[:i]
	s = trimLeftOWS(s[i:])
	ok := name != ""
	if len(s) > 0 && s[0] == '=' {
		hasValue = true
		s = trimLeftOWS(s[1:])
		if len(s) > 0 && s[0] == '"' {
			var closed bool
			value, s, closed = quotedString(s)
			ok = ok && closed
		} else {
			j := 0
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			value, s = s[:j], s[j:]
		}
		s = trimLeftOWS(s)
	}
	// Anything before the next comma that is not part of the directive
	// makes it malformed; skip to the comma, respecting quotes.
	if len(s) > 0 && s[0] != ',' {
		ok = false
	}
	rest = skipToComma(s)
	if !ok {
		return "", "", false, rest
	}
	return lowerASCII(name), value, hasValue, rest
}

// quotedString reads a quoted-string at the start of s (s[0] == '"'),
// returning its unescaped content and what follows the closing quote.
func quotedString(s string) (content, rest string, closed bool) {
	var b strings.Builder
	plain := true
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			if plain {
				return s[1:i], s[i+1:], true
			}
			return b.String(), s[i+1:], true
		case '\\':
			if plain {
				plain = false
				b.WriteString(s[1:i])
			}
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			if !plain {
				b.WriteByte(c)
			}
		}
	}
	return "", "", false
}

// skipToComma returns s after the first comma outside a quoted string.
func skipToComma(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return s[i+1:]
			}
		}
	}
	return ""
}

// Bits of "seen" in ParseCacheControl, for the first-occurrence rule.
const (
	seenMaxAge = 1 << iota
	seenSMaxAge
	seenMaxStale
	seenMinFresh
	seenSWR
	seenSIE
)

func (cc *CacheControl) apply(name, value string, hasValue bool, seen *uint32) {
	delta := func(bit uint32, d *Delta, invalidIsZero bool) {
		if *seen&bit != 0 {
			return
		}
		n, ok := parseDelta(value)
		if !ok {
			if !invalidIsZero {
				return
			}
			n = 0
		}
		*seen |= bit
		*d = Delta{Seconds: n, Set: true}
	}
	switch name {
	case "max-age":
		delta(seenMaxAge, &cc.MaxAge, true)
	case "s-maxage":
		delta(seenSMaxAge, &cc.SMaxAge, true)
	case "max-stale":
		if !hasValue {
			if *seen&seenMaxStale == 0 {
				*seen |= seenMaxStale
				cc.MaxStale = Delta{Seconds: maxDelta, Set: true}
			}
			return
		}
		delta(seenMaxStale, &cc.MaxStale, false)
	case "min-fresh":
		delta(seenMinFresh, &cc.MinFresh, false)
	case "stale-while-revalidate":
		delta(seenSWR, &cc.StaleWhileRevalidate, false)
	case "stale-if-error":
		delta(seenSIE, &cc.StaleIfError, false)
	case "no-store":
		cc.NoStore = true
	case "no-cache":
		cc.NoCache = true
	case "private":
		cc.Private = true
	case "public":
		cc.Public = true
	case "must-revalidate":
		cc.MustRevalidate = true
	case "proxy-revalidate":
		cc.ProxyRevalidate = true
	case "no-transform":
		cc.NoTransform = true
	case "immutable":
		cc.Immutable = true
	case "only-if-cached":
		cc.OnlyIfCached = true
	case "must-understand":
		cc.MustUnderstand = true
	}
}

// parseDelta parses delta-seconds: one or more digits, capped at 2^31.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// String formats cc as a Cache-Control field value in a fixed order; it
// parses back to cc.
func (cc CacheControl) String() string {
	var parts []string
	delta := func(name string, d Delta) {
		if d.Set {
			parts = append(parts, name+"="+strconv.FormatInt(d.Seconds, 10))
		}
	}
	flag := func(name string, b bool) {
		if b {
			parts = append(parts, name)
		}
	}
	delta("max-age", cc.MaxAge)
	delta("s-maxage", cc.SMaxAge)
	delta("max-stale", cc.MaxStale)
	delta("min-fresh", cc.MinFresh)
	delta("stale-while-revalidate", cc.StaleWhileRevalidate)
	delta("stale-if-error", cc.StaleIfError)
	flag("no-store", cc.NoStore)
	flag("no-cache", cc.NoCache)
	flag("private", cc.Private)
	flag("public", cc.Public)
	flag("must-revalidate", cc.MustRevalidate)
	flag("proxy-revalidate", cc.ProxyRevalidate)
	flag("no-transform", cc.NoTransform)
	flag("immutable", cc.Immutable)
	flag("only-if-cached", cc.OnlyIfCached)
	flag("must-understand", cc.MustUnderstand)
	return strings.Join(parts, ", ")
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func trimLeftOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func trimOWS(s string) string {
	s = trimLeftOWS(s)
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// lowerASCII lower-cases s without allocating when it already is.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
