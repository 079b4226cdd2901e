package types

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testColumns() []Column {
	return []Column{
		{"id", StringT},
		{"amount", DoubleT},
		{"qty", IntegerT},
		{"big", BigintT},
		{"ok", BooleanT},
		{"at", TimestampT},
		{"tags", ArrayOf(StringT)},
		{"attrs", MapOf(BigintT)},
		{"addr", &Type{Kind: Struct, Fields: []Field{{"city", StringT}, {"zip", IntegerT}}}},
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, data string
		want       string // the row, rendered
		errs       []string
	}{
		{"all columns", `{"id":"a","amount":1.5,"qty":3,"big":9007199254740993,"ok":true,"at":"2026-01-02T03:04:05.5Z","tags":["x","y"],"attrs":{"b":2,"a":1},"addr":{"zip":123,"city":"Oslo","extra":[1,{"z":null}]}}`,
			`a|1.5|3|9007199254740993|true|2026-01-02T03:04:05.500Z|["x", "y"]|{"a": 1, "b": 2}|["Oslo", 123]`, nil},
		{"absent and null", `{"id":null, "other": {"deep": [1, 2, "three"]}}`, `NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, nil},
		{"case-insensitive names, escapes", ` { "ID" : "a\"b\u00e9\ud83d\ude00" , "Amount": 2 } `, `a"bé😀|2|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, nil},
		{"mismatches become NULL", `{"id":5,"amount":"x","qty":1.5,"ok":1,"at":12,"tags":[{"a":1}],"big":99999999999999999999}`,
			`5|NULL|NULL|NULL|NULL|1970-01-01T00:00:00.012Z|NULL|NULL|NULL`,
			[]string{"column amount: expected DOUBLE, found string \"x\"", "column qty: expected INTEGER, found number 1.5",
				"column ok: expected BOOLEAN, found number 1", "column tags: element 0: expected STRING, found an object",
				"column big: number 99999999999999999999 out of range for BIGINT"}},
		{"integer overflow", `{"qty": 2147483648}`, `NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, []string{"column qty: number 2147483648 out of range for INTEGER"}},
		{"not an object", `[1,2]`, `NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, []string{"event data: not a JSON object"}},
		{"syntax error", `{"id":"a","amount":}`, `NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, []string{"event data: invalid JSON at byte 19"}},
		{"trailing garbage", `{"id":"a"} x`, `NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, []string{"event data: invalid JSON at byte 11"}},
		{"duplicate field keeps the first", `{"id":"a","id":"b"}`, `a|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(testColumns())
			out := make([]Value, 9)
			errs := d.Decode([]byte(tt.data), out, nil)
			var parts []string
			for _, v := range out {
				parts = append(parts, v.String())
			}
			if got := strings.Join(parts, "|"); got != tt.want {
				t.Errorf("row:\ngot  %s\nwant %s", got, tt.want)
			}
			var gotErrs []string
			for _, e := range errs {
				gotErrs = append(gotErrs, strings.TrimPrefix(e.Error(), "streamsql: "))
			}
			if d := cmp.Diff(tt.errs, gotErrs); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	vals := []Value{{}, NewBool(true), NewInt(-42), NewDouble(math.Pi), NewString("héllo"), NewTimestamp(1e12),
		NewArray([]Value{NewInt(1), {}}), NewMap(map[string]Value{"a": NewString("x"), "b": NewInt(2)}),
		NewStruct([]Value{NewString("s"), NewArray(nil)})}
	buf := AppendRow(nil, vals)
	got, rest, err := DecodeRow(buf)
	if err != nil || len(rest) != 0 {
		t.Fatalf("DecodeRow: %v (%d bytes left)", err, len(rest))
	}
	for i := range vals {
		if !Equal(got[i], vals[i]) {
			t.Errorf("value %d: got %v, want %v", i, got[i], vals[i])
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b Value
		want int
	}{
		{Value{}, NewInt(1), -1},
		{NewInt(1), Value{}, 1},
		{Value{}, Value{}, 0},
		{NewInt(2), NewDouble(2.5), -1},
		{NewDouble(3), NewInt(3), 0},
		{NewString("b"), NewString("a"), 1},
		{NewArray([]Value{NewInt(1)}), NewArray([]Value{NewInt(1), NewInt(0)}), -1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	typ := &Type{Kind: Struct, Fields: []Field{{"name", StringT}, {"n", ArrayOf(DoubleT)}}}
	v := NewStruct([]Value{NewString("a\"\n\x01é"), NewArray([]Value{NewDouble(1.5), NewDouble(math.NaN()), {}})})
	got := string(AppendJSON(nil, v, typ))
	want := `{"name":"a\"\n\u0001é","n":[1.5,null,null]}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("invalid JSON %s", got)
	}
}

// FuzzDecode checks that the decoder never panics, agrees with
// encoding/json on which inputs are valid objects, and round-trips the
// values it extracts through AppendJSON.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","amount":1.5,"tags":["x"],"attrs":{"k":1},"addr":{"city":"c"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cols := testColumns()
		d := NewDecoder(cols)
		out := make([]Value, len(cols))
		errs := d.Decode(data, out, nil)
		var obj map[string]json.RawMessage
		stdOK := json.Unmarshal(data, &obj) == nil && obj != nil
		syntaxErr := len(errs) > 0 && errs[0].Column == ""
		if stdOK == syntaxErr && !strings.Contains(string(data), `\u`) {
			t.Fatalf("encoding/json valid=%v, decoder syntax error=%v (%v) for %q", stdOK, syntaxErr, errs, data)
		}
		for i, v := range out {
			if v.IsNull() {
				continue
			}
			enc := AppendJSON(nil, v, cols[i].Type)
			d2 := NewDecoder(cols[i : i+1])
			back := make([]Value, 1)
			if e := d2.Decode([]byte(`{"`+cols[i].Name+`":`+string(enc)+`}`), back, nil); len(e) > 0 || !Equal(back[0], v) {
				t.Fatalf("column %s: %v re-encoded as %s decodes to %v (%v)", cols[i].Name, v, enc, back[0], e)
			}
		}
	})
}

func TestDecimal(t *testing.T) {
	typ := DecimalOf(6, 2)
	tests := []struct {
		in, want string
	}{
		{"12.345", "12.35"}, {"-12.345", "-12.35"}, {"0.004", "0.00"}, {"-0.005", "-0.01"}, {"1e2", "100.00"},
		{"9999.994", "9999.99"}, {"9999.995", "error: out of range"}, {"1e41", "error: out of range"}, {"abc", "error: not a number"},
	}
	for _, tt := range tests {
		v, err := ParseDecimal(tt.in, typ.Precision, typ.Scale)
		got := v.String()
		if err != nil {
			got = "error: " + err.Error()
		}
		if got != tt.want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	d := NewDecimal(150, 2) // 1.50
	for _, c := range []struct {
		other Value
		want  int
	}{{NewDecimal(15, 1), 0}, {NewInt(2), -1}, {NewDouble(1.25), 1}, {NewDecimal(-1, 3), 1}} {
		if got := Compare(d, c.other); got != c.want {
			t.Errorf("Compare(1.50, %v) = %d, want %d", c.other, got, c.want)
		}
	}
	v, _, err := DecodeKey(AppendKey(nil, NewDecimal(-12340, 3)))
	if err != nil || v.String() != "-12.340" {
		t.Errorf("DecodeKey keeps the scale: %v %v", v, err)
	}
	r, err := Rescale(NewDecimal(12345, 3), 5, 1)
	if err != nil || r.String() != "12.3" {
		t.Errorf("Rescale: %v %v", r, err)
	}
	if _, err := Rescale(NewInt(1000), 4, 2); err == nil {
		t.Error("Rescale(1000 to DECIMAL(4, 2)) did not overflow")
	}
	// Decoding: numbers and strings, exactly.
	dec := NewDecoder([]Column{{"p", typ}, {"q", typ}})
	out := make([]Value, 2)
	errs := dec.Decode([]byte(`{"p": 0.1, "q": "12345678"}`), out, nil)
	if out[0].String() != "0.10" || !out[1].IsNull() || len(errs) != 1 {
		t.Errorf("decode: %v %v", out, errs)
	}
	if got := string(AppendJSON(nil, NewDecimal(-5, 2), typ)); got != "-0.05" {
		t.Errorf("AppendJSON: %s", got)
	}
}
