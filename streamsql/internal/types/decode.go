package types

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Column is a named, typed column.
type Column struct {
	Name string
	Type *Type
}

// DecodeError is one problem met while decoding event data: a field whose
// JSON does not fit its column (the column gets NULL), or data that is not
// a JSON object (every column gets NULL; Column is empty).
type DecodeError struct {
	Column string
	Msg    string
}

func (e DecodeError) Error() string {
	if e.Column == "" {
		return "streamsql: event data: " + e.Msg
	}
	return "streamsql: column " + e.Column + ": " + e.Msg
}

// Decoder extracts declared columns from the top-level fields of JSON
// objects, skipping every other field without building it. Field names
// match column names exactly or, failing that, case-insensitively. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	cols  []Column
	exact map[string]int
	seen  []uint8 // per column: 0 not met, 1 met by a case-insensitive match, 2 met exactly
	n0    int     // len(errs) when Decode started
}

// NewDecoder returns a decoder for cols.
func NewDecoder(cols []Column) *Decoder {
	d := &Decoder{cols: cols, exact: make(map[string]int, len(cols)), seen: make([]uint8, len(cols))}
	for i, c := range cols {
		d.exact[c.Name] = i
	}
	return d
}

// Decode fills out[i] with column i (NULL when absent, null or
// mismatched) and appends the problems met to errs.
func (d *Decoder) Decode(data []byte, out []Value, errs []DecodeError) []DecodeError {
	for i := range out[:len(d.cols)] {
		out[i] = Value{}
		d.seen[i] = 0
	}
	s := scanner{b: data}
	d.n0 = len(errs)
	s.ws()
	if !s.eat('{') {
		return append(errs, DecodeError{Msg: "not a JSON object"})
	}
	s.ws()
	if s.eat('}') {
		return d.trailing(&s, out, errs)
	}
	for {
		s.ws()
		key, ok := s.rawString()
		if !ok {
			return d.syntax(&s, out, errs)
		}
		s.ws()
		if !s.eat(':') {
			return d.syntax(&s, out, errs)
		}
		s.ws()
		idx, found := d.exact[string(key)]
		match := uint8(2)
		if !found {
			idx, match = d.fold(key), 1
		}
		// The first field for a column wins, but an exact name wins over
		// a case-insensitive one wherever it stands.
		if idx >= 0 && d.seen[idx] < match {
			d.seen[idx] = match
			v, msg, ok := s.value(d.cols[idx].Type)
			if !ok {
				return d.syntax(&s, out, errs)
			}
			out[idx] = Value{}
			if msg != "" {
				errs = append(errs, DecodeError{Column: d.cols[idx].Name, Msg: msg})
			} else {
				out[idx] = v
			}
		} else if !s.skip() {
			return d.syntax(&s, out, errs)
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return d.trailing(&s, out, errs)
		}
		return d.syntax(&s, out, errs)
	}
}

func (d *Decoder) fold(key []byte) int {
	for i, c := range d.cols {
		if len(c.Name) == len(key) && strings.EqualFold(c.Name, string(key)) {
			return i
		}
	}
	return -1
}

func (d *Decoder) trailing(s *scanner, out []Value, errs []DecodeError) []DecodeError {
	s.ws()
	if s.i != len(s.b) {
		return d.syntax(s, out, errs)
	}
	return errs
}

func (d *Decoder) syntax(s *scanner, out []Value, errs []DecodeError) []DecodeError {
	for i := range out[:len(d.cols)] {
		out[i] = Value{}
	}
	return append(errs[:d.n0], DecodeError{Msg: fmt.Sprintf("invalid JSON at byte %d", s.i)})
}

// scanner reads JSON from b.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// rawString reads a string; without escapes it returns a slice of b.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			raw := s.b[start : s.i-1]
			if !ascii && !utf8.Valid(raw) {
				// As encoding/json does: invalid bytes become U+FFFD.
				raw = []byte(strings.ToValidUTF8(string(raw), "\uFFFD"))
			}
			return raw, true
		case c == '\\':
			s.i = start
			str, ok := s.escaped()
			return []byte(str), ok
		case c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	return nil, false
}

// escaped reads the rest of a string that has escapes.
func (s *scanner) escaped() (string, bool) {
	var b strings.Builder
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return strings.ToValidUTF8(b.String(), "\uFFFD"), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b.WriteByte(c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok = s.hex4(); !ok {
						return "", false
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError || r2 < 0 {
					r = d
				} else {
					b.WriteRune(utf8.RuneError) // a lone surrogate
					r = r2
				}
			}
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return "", false
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// number reads a JSON number and reports whether it is an integer.
func (s *scanner) number() ([]byte, bool, bool) {
	start := s.i
	s.eat('-')
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || s.b[digits] == '0' && s.i-digits > 1 {
		return nil, false, false
	}
	isInt := true
	if s.eat('.') {
		isInt = false
		d := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return nil, false, false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		isInt = false
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		d := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		if s.i == d {
			return nil, false, false
		}
	}
	return s.b[start:s.i], isInt, true
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip passes over one value.
func (s *scanner) skip() bool {
	_, _, ok := s.value(nil)
	return ok
}

// value reads one JSON value as type t (nil: read and discard). ok is
// false on a syntax error; msg is set when the value does not fit t.
func (s *scanner) value(t *Type) (v Value, msg string, ok bool) {
	switch c := s.peek(); {
	case c == '"':
		raw, ok := s.rawString()
		if !ok || t == nil {
			return Value{}, "", ok
		}
		v, msg := fromString(string(raw), t)
		return v, msg, true
	case c == '-' || c >= '0' && c <= '9':
		raw, isInt, ok := s.number()
		if !ok || t == nil {
			return Value{}, "", ok
		}
		v, msg := fromNumber(raw, isInt, t)
		return v, msg, true
	case c == 't' || c == 'f':
		b := s.literal("true")
		if !b && !s.literal("false") {
			return Value{}, "", false
		}
		switch {
		case t == nil:
			return Value{}, "", true
		case t.Kind == Bool:
			return NewBool(b), "", true
		case t.Kind == String:
			return NewString(strconv.FormatBool(b)), "", true
		}
		return Value{}, "expected " + t.String() + ", found a boolean", true
	case c == 'n':
		return Value{}, "", s.literal("null")
	case c == '[':
		return s.array(t)
	case c == '{':
		return s.object(t)
	}
	return Value{}, "", false
}

func (s *scanner) array(t *Type) (Value, string, bool) {
	s.i++
	var elems []Value
	msg := ""
	want := t != nil && t.Kind == Array
	if t != nil && !want {
		msg = "expected " + t.String() + ", found an array"
	}
	s.ws()
	if s.eat(']') {
		if want {
			return NewArray([]Value{}), "", true
		}
		return Value{}, msg, true
	}
	for {
		s.ws()
		var et *Type
		if want {
			et = t.Elem
		}
		v, m, ok := s.value(et)
		if !ok {
			return Value{}, "", false
		}
		if m != "" && msg == "" {
			msg = "element " + strconv.Itoa(len(elems)) + ": " + m
		}
		elems = append(elems, v)
		s.ws()
		if s.eat(']') {
			break
		}
		if !s.eat(',') {
			return Value{}, "", false
		}
	}
	if !want || msg != "" {
		return Value{}, msg, true
	}
	return NewArray(elems), "", true
}

func (s *scanner) object(t *Type) (Value, string, bool) {
	s.i++
	msg := ""
	var m map[string]Value
	var fields []Value
	switch {
	case t == nil:
	case t.Kind == Map:
		m = map[string]Value{}
	case t.Kind == Struct:
		fields = make([]Value, len(t.Fields))
	default:
		msg = "expected " + t.String() + ", found an object"
	}
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			key, ok := s.rawString()
			if !ok {
				return Value{}, "", false
			}
			s.ws()
			if !s.eat(':') {
				return Value{}, "", false
			}
			s.ws()
			var vt *Type
			fi := -1
			switch {
			case m != nil:
				vt = t.Elem
			case fields != nil:
				if fi = t.FieldIndex(string(key)); fi >= 0 {
					vt = t.Fields[fi].Type
				}
			}
			v, em, ok := s.value(vt)
			if !ok {
				return Value{}, "", false
			}
			if em != "" && msg == "" {
				msg = "field " + string(key) + ": " + em
			}
			if m != nil {
				m[string(key)] = v
			} else if fi >= 0 {
				fields[fi] = v
			}
			s.ws()
			if s.eat('}') {
				break
			}
			if !s.eat(',') {
				return Value{}, "", false
			}
		}
	}
	switch {
	case msg != "" || t == nil:
		return Value{}, msg, true
	case m != nil:
		return NewMap(m), "", true
	}
	return NewStruct(fields), "", true
}

func fromString(raw string, t *Type) (Value, string) {
	switch t.Kind {
	case String:
		return NewString(raw), ""
	case Timestamp:
		if ts, ok := ParseTimestamp(raw); ok {
			return NewTimestamp(ts), ""
		}
		return Value{}, fmt.Sprintf("expected TIMESTAMP, found string %q", truncate(raw))
	case Decimal:
		v, err := ParseDecimal(raw, t.Precision, t.Scale)
		if err != nil {
			return Value{}, fmt.Sprintf("expected %s, found string %q (%v)", t, truncate(raw), err)
		}
		return v, ""
	}
	return Value{}, fmt.Sprintf("expected %s, found string %q", t, truncate(raw))
}

func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	i := 40
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// ParseTimestamp reads RFC 3339 text (with or without a fractional part
// or zone; without a zone it is UTC) as milliseconds since the epoch.
func ParseTimestamp(s string) (int64, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

func fromNumber(raw []byte, isInt bool, t *Type) (Value, string) {
	switch t.Kind {
	case Int, Timestamp:
		if !isInt {
			return Value{}, fmt.Sprintf("expected %s, found number %s", t, raw)
		}
		i, ok := parseInt(raw)
		if !ok || t.Narrow && (i > math.MaxInt32 || i < math.MinInt32) {
			return Value{}, fmt.Sprintf("number %s out of range for %s", raw, t)
		}
		return Value{K: t.Kind, I: i}, ""
	case Double:
		if isInt {
			if i, ok := parseInt(raw); ok && i > -1<<53 && i < 1<<53 {
				return NewDouble(float64(i)), ""
			}
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return Value{}, fmt.Sprintf("number %s out of range for DOUBLE", raw)
		}
		return NewDouble(f), ""
	case String:
		return NewString(string(raw)), ""
	case Decimal:
		v, err := ParseDecimal(string(raw), t.Precision, t.Scale)
		if err != nil {
			return Value{}, fmt.Sprintf("number %s %v for %s", raw, err, t)
		}
		return v, ""
	}
	return Value{}, fmt.Sprintf("expected %s, found number %s", t, raw)
}

func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0')
	}
	if u > 1<<63-1+boolU(neg) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
