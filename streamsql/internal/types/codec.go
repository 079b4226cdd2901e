package types

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrCorrupt reports bytes that are not an encoded value.
var ErrCorrupt = errors.New("streamsql: corrupt encoded value")

// AppendKey appends a self-delimiting binary encoding of v to buf. Equal
// values of one type encode to equal bytes (map entries are sorted), so the
// encoding serves as a map key; DecodeKey reverses it exactly.
func AppendKey(buf []byte, v Value) []byte {
	buf = append(buf, byte(v.K))
	switch v.K {
	case Bool, Int, Timestamp:
		buf = binary.AppendVarint(buf, v.I)
	case Double:
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(v.F))
	case Decimal:
		// Values of one expression share its type's scale, so equal
		// values encode equally; the scale is kept for decoding.
		buf = binary.AppendVarint(buf, v.I)
		buf = append(buf, byte(v.Sc))
	case String:
		buf = binary.AppendUvarint(buf, uint64(len(v.S)))
		buf = append(buf, v.S...)
	case Array, Struct:
		l := v.List()
		buf = binary.AppendUvarint(buf, uint64(len(l)))
		for _, e := range l {
			buf = AppendKey(buf, e)
		}
	case Map:
		m := v.MapValue()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = binary.AppendUvarint(buf, uint64(len(keys)))
		for _, k := range keys {
			buf = binary.AppendUvarint(buf, uint64(len(k)))
			buf = append(buf, k...)
			buf = AppendKey(buf, m[k])
		}
	}
	return buf
}

// DecodeKey decodes one value from the front of b and returns the rest.
func DecodeKey(b []byte) (Value, []byte, error) {
	if len(b) == 0 {
		return Value{}, nil, ErrCorrupt
	}
	k := Kind(b[0])
	b = b[1:]
	switch k {
	case Null:
		return Value{}, b, nil
	case Bool, Int, Timestamp:
		i, n := binary.Varint(b)
		if n <= 0 {
			return Value{}, nil, ErrCorrupt
		}
		return Value{K: k, I: i}, b[n:], nil
	case Decimal:
		i, n := binary.Varint(b)
		if n <= 0 || len(b) < n+1 {
			return Value{}, nil, ErrCorrupt
		}
		return NewDecimal(i, int(int8(b[n]))), b[n+1:], nil
	case Double:
		if len(b) < 8 {
			return Value{}, nil, ErrCorrupt
		}
		return NewDouble(math.Float64frombits(binary.BigEndian.Uint64(b))), b[8:], nil
	case String:
		s, rest, err := decodeString(b)
		return NewString(s), rest, err
	case Array, Struct:
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)) {
			return Value{}, nil, ErrCorrupt
		}
		b = b[w:]
		l := make([]Value, n)
		for i := range l {
			var err error
			if l[i], b, err = DecodeKey(b); err != nil {
				return Value{}, nil, err
			}
		}
		return Value{K: k, X: l}, b, nil
	case Map:
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)) {
			return Value{}, nil, ErrCorrupt
		}
		b = b[w:]
		m := make(map[string]Value, n)
		for range n {
			key, rest, err := decodeString(b)
			if err != nil {
				return Value{}, nil, err
			}
			var v Value
			if v, b, err = DecodeKey(rest); err != nil {
				return Value{}, nil, err
			}
			m[key] = v
		}
		return NewMap(m), b, nil
	}
	return Value{}, nil, ErrCorrupt
}

func decodeString(b []byte) (string, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return "", nil, ErrCorrupt
	}
	return string(b[w : w+int(n)]), b[w+int(n):], nil
}

// AppendRow encodes values one after another.
func AppendRow(buf []byte, vs []Value) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(vs)))
	for _, v := range vs {
		buf = AppendKey(buf, v)
	}
	return buf
}

// DecodeRow reverses AppendRow.
func DecodeRow(b []byte) ([]Value, []byte, error) {
	v, rest, err := DecodeKey(append([]byte{byte(Array)}, b...))
	if err != nil {
		return nil, nil, err
	}
	return v.List(), rest, nil
}

// AppendJSON appends v as JSON: numbers, strings, booleans, null, arrays,
// objects for maps; a struct of type t becomes an object with t's field
// names; timestamps are strings in RFC 3339 with milliseconds.
func AppendJSON(buf []byte, v Value, t *Type) []byte {
	switch v.K {
	case Null:
		return append(buf, "null"...)
	case Bool:
		return strconv.AppendBool(buf, v.I != 0)
	case Int:
		return strconv.AppendInt(buf, v.I, 10)
	case Double:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return append(buf, "null"...)
		}
		return strconv.AppendFloat(buf, v.F, 'g', -1, 64)
	case String:
		return appendJSONString(buf, v.S)
	case Decimal:
		return append(buf, FormatDecimal(v.I, int(v.Sc))...)
	case Timestamp:
		return appendJSONString(buf, time.UnixMilli(v.I).UTC().Format("2006-01-02T15:04:05.000Z"))
	case Array:
		buf = append(buf, '[')
		for i, e := range v.List() {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = AppendJSON(buf, e, elem(t))
		}
		return append(buf, ']')
	case Map:
		m := v.MapValue()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, '{')
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			buf = AppendJSON(buf, m[k], elem(t))
		}
		return append(buf, '}')
	}
	buf = append(buf, '{')
	for i, e := range v.List() {
		if i > 0 {
			buf = append(buf, ',')
		}
		name, ft := "f"+strconv.Itoa(i+1), (*Type)(nil)
		if t != nil && i < len(t.Fields) {
			name, ft = t.Fields[i].Name, t.Fields[i].Type
		}
		buf = appendJSONString(buf, name)
		buf = append(buf, ':')
		buf = AppendJSON(buf, e, ft)
	}
	return append(buf, '}')
}

func elem(t *Type) *Type {
	if t == nil {
		return nil
	}
	return t.Elem
}

const hexDigits = "0123456789abcdef"

func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+n]...)
		}
		i += n
	}
	return append(buf, '"')
}
