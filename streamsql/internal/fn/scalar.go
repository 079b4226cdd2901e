package fn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fjord-data/fjord/streamsql/internal/types"
)

var (
	tBool   = types.BooleanT
	tInt    = types.IntegerT
	tBig    = types.BigintT
	tDouble = types.DoubleT
	tString = types.StringT
	tTS     = types.TimestampT
)

func s(x string) Value          { return types.NewString(x) }
func i64(x int64) Value         { return types.NewInt(x) }
func f64(x float64) Value       { return types.NewDouble(x) }
func ok(v Value) (Value, error) { return v, nil }

func scalars() map[string]*Scalar {
	m := map[string]*Scalar{}
	add := func(f *Scalar) { m[f.Name] = f }
	str1 := func(name string, f func(string) string) {
		add(&Scalar{Name: name, Check: signature(tString, tString), Eval: func(a []Value) (Value, error) { return ok(s(f(a[0].S))) }})
	}
	math1 := func(name string, f func(float64) float64) {
		add(&Scalar{Name: name, Check: signature(tDouble, tDouble), Eval: func(a []Value) (Value, error) {
			r := f(a[0].AsFloat())
			if math.IsNaN(r) {
				return Value{}, fmt.Errorf("%s(%v) is not a number", name, a[0])
			}
			return ok(f64(r))
		}})
	}

	// Strings.
	str1("UCASE", strings.ToUpper)
	str1("LCASE", strings.ToLower)
	str1("TRIM", strings.TrimSpace)
	str1("LTRIM", func(x string) string { return strings.TrimLeftFunc(x, unicode.IsSpace) })
	str1("RTRIM", func(x string) string { return strings.TrimRightFunc(x, unicode.IsSpace) })
	str1("INITCAP", initcap)
	str1("REVERSE", func(x string) string { r := []rune(x); slices.Reverse(r); return string(r) })
	add(&Scalar{Name: "LEN", Check: signature(tInt, tString), Eval: func(a []Value) (Value, error) { return ok(i64(int64(utf8.RuneCountInString(a[0].S)))) }})
	add(&Scalar{Name: "SUBSTRING", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 2, 3); err != nil {
			return nil, err
		}
		if len(args) == 2 {
			return signature(tString, tString, tBig)(args)
		}
		return signature(tString, tString, tBig, tBig)(args)
	}, Eval: substring})
	add(&Scalar{Name: "CONCAT", Check: func(args []*Type) (*Type, error) {
		if len(args) == 0 {
			return nil, fmt.Errorf("%w: takes at least 1 argument", ErrArgs)
		}
		for i := range args {
			if err := argKind(args, i, types.String, "STRING"); err != nil {
				return nil, err
			}
		}
		return tString, nil
	}, NullAware: true, Eval: func(a []Value) (Value, error) {
		var b strings.Builder
		for _, v := range a {
			b.WriteString(v.S)
		}
		return ok(s(b.String()))
	}})
	add(&Scalar{Name: "REPLACE", Check: signature(tString, tString, tString, tString), Eval: func(a []Value) (Value, error) {
		return ok(s(strings.ReplaceAll(a[0].S, a[1].S, a[2].S)))
	}})
	add(&Scalar{Name: "INSTR", Check: signature(tInt, tString, tString), Eval: func(a []Value) (Value, error) {
		i := strings.Index(a[0].S, a[1].S)
		if i < 0 {
			return ok(i64(0))
		}
		return ok(i64(int64(utf8.RuneCountInString(a[0].S[:i]) + 1)))
	}})
	add(&Scalar{Name: "SPLIT", Check: signature(types.ArrayOf(tString), tString, tString), Eval: func(a []Value) (Value, error) {
		var parts []string
		if a[1].S == "" {
			parts = strings.Split(a[0].S, "")
		} else {
			parts = strings.Split(a[0].S, a[1].S)
		}
		out := make([]Value, len(parts))
		for i, p := range parts {
			out[i] = s(p)
		}
		return ok(types.NewArray(out))
	}})
	pad := func(name string, left bool) {
		add(&Scalar{Name: name, Check: signature(tString, tString, tBig, tString), Eval: func(a []Value) (Value, error) {
			return padString(a[0].S, a[1].I, a[2].S, left)
		}})
	}
	pad("LPAD", true)
	pad("RPAD", false)
	add(&Scalar{Name: "REGEXP_EXTRACT", Check: signature(tString, tString, tString), Eval: func(a []Value) (Value, error) {
		re, err := regexp.Compile(a[0].S)
		if err != nil {
			return Value{}, err
		}
		m := re.FindStringSubmatch(a[1].S)
		switch {
		case m == nil:
			return Value{}, nil
		case len(m) > 1:
			return ok(s(m[1]))
		}
		return ok(s(m[0]))
	}})

	// Math.
	add(&Scalar{Name: "ABS", Check: numeric1, Eval: func(a []Value) (Value, error) {
		switch a[0].K {
		case types.Int:
			if a[0].I == math.MinInt64 {
				return Value{}, fmt.Errorf("%w: ABS of %d is out of range for BIGINT", ErrArgs, a[0].I)
			}
			if a[0].I < 0 {
				return ok(i64(-a[0].I))
			}
			return ok(a[0])
		case types.Decimal:
			if a[0].I < 0 {
				return ok(types.NewDecimal(-a[0].I, int(a[0].Sc)))
			}
			return ok(a[0])
		}
		return ok(f64(math.Abs(a[0].F)))
	}})
	add(&Scalar{Name: "SIGN", Check: signature(tInt, tDouble), Eval: func(a []Value) (Value, error) {
		x := a[0].AsFloat()
		switch {
		case x > 0:
			return ok(i64(1))
		case x < 0:
			return ok(i64(-1))
		}
		return ok(i64(0))
	}})
	round := func(name string, f func(float64) float64, mode roundMode) {
		add(&Scalar{Name: name, Check: numeric1, Eval: func(a []Value) (Value, error) {
			switch a[0].K {
			case types.Int:
				return ok(a[0])
			case types.Decimal:
				return ok(roundDecimal(a[0], mode))
			}
			return ok(f64(f(a[0].F)))
		}})
	}
	round("CEIL", math.Ceil, roundCeil)
	round("FLOOR", math.Floor, roundFloor)
	add(&Scalar{Name: "ROUND", Check: func(args []*Type) (*Type, error) {
		if len(args) == 2 {
			return signature(tDouble, tDouble, tBig)(args)
		}
		return numeric1(args)
	}, Eval: func(a []Value) (Value, error) {
		if len(a) == 1 {
			switch a[0].K {
			case types.Int:
				return ok(a[0])
			case types.Decimal:
				return ok(roundDecimal(a[0], roundHalf))
			}
			return ok(f64(math.Round(a[0].F)))
		}
		x, p := a[0].AsFloat(), math.Pow(10, float64(a[1].I))
		switch {
		case math.IsInf(x, 0) || math.IsNaN(x):
			return ok(f64(x))
		case p == 0: // a power of ten beyond any double
			return ok(f64(0))
		case math.IsInf(x*p, 0): // no digits that far right: x as it is
			return ok(f64(x))
		}
		return ok(f64(math.Round(x*p) / p))
	}})
	math1("SQRT", math.Sqrt)
	math1("EXP", math.Exp)
	math1("LN", math.Log)
	math1("LOG10", math.Log10)
	add(&Scalar{Name: "POWER", Check: signature(tDouble, tDouble, tDouble), Eval: func(a []Value) (Value, error) {
		return ok(f64(math.Pow(a[0].AsFloat(), a[1].AsFloat())))
	}})
	extreme := func(name string, want int) {
		add(&Scalar{Name: name, Check: common, NullAware: true, Coerce: true, Eval: func(a []Value) (Value, error) {
			var best Value
			for _, v := range a {
				if !v.IsNull() && (best.IsNull() || types.Compare(v, best) == want) {
					best = v
				}
			}
			return ok(best)
		}})
	}
	extreme("GREATEST", 1)
	extreme("LEAST", -1)

	// NULL handling.
	add(&Scalar{Name: "COALESCE", Check: common, NullAware: true, Coerce: true, Eval: func(a []Value) (Value, error) {
		for _, v := range a {
			if !v.IsNull() {
				return ok(v)
			}
		}
		return Value{}, nil
	}})
	add(&Scalar{Name: "IFNULL", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 2, 2); err != nil {
			return nil, err
		}
		return common(args)
	}, NullAware: true, Coerce: true, Eval: func(a []Value) (Value, error) {
		if a[0].IsNull() {
			return ok(a[1])
		}
		return ok(a[0])
	}})
	add(&Scalar{Name: "NULLIF", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 2, 2); err != nil {
			return nil, err
		}
		if _, ok := Common(args[0], args[1]); !ok {
			return nil, fmt.Errorf("%w: cannot compare %s with %s", ErrArgs, args[0], args[1])
		}
		return args[0], nil
	}, NullAware: true, Eval: func(a []Value) (Value, error) {
		if !a[0].IsNull() && !a[1].IsNull() && types.Compare(a[0], a[1]) == 0 {
			return Value{}, nil
		}
		return ok(a[0])
	}})

	// Date and time.
	add(&Scalar{Name: "TIMESTAMPTOSTRING", Check: func(args []*Type) (*Type, error) {
		if len(args) == 3 {
			return signature(tString, tTS, tString, tString)(args)
		}
		return signature(tString, tTS, tString)(args)
	}, Eval: func(a []Value) (Value, error) {
		loc, err := location(a)
		if err != nil {
			return Value{}, err
		}
		return ok(s(time.UnixMilli(a[0].I).In(loc).Format(JavaLayout(a[1].S))))
	}})
	add(&Scalar{Name: "STRINGTOTIMESTAMP", Check: func(args []*Type) (*Type, error) {
		if len(args) == 3 {
			return signature(tTS, tString, tString, tString)(args)
		}
		return signature(tTS, tString, tString)(args)
	}, Eval: func(a []Value) (Value, error) {
		loc, err := location(a)
		if err != nil {
			return Value{}, err
		}
		t, err := time.ParseInLocation(JavaLayout(a[1].S), a[0].S, loc)
		if err != nil {
			return Value{}, fmt.Errorf("cannot parse %q with format %q", a[0].S, a[1].S)
		}
		return ok(types.NewTimestamp(t.UnixMilli()))
	}})
	add(&Scalar{Name: "FROM_UNIXTIME", Check: signature(tTS, tBig), Eval: func(a []Value) (Value, error) { return ok(types.NewTimestamp(a[0].I)) }})
	add(&Scalar{Name: "UNIX_TIMESTAMP", Check: signature(tBig, tTS), Eval: func(a []Value) (Value, error) { return ok(i64(a[0].I)) }})
	add(&Scalar{Name: "TIMESTAMPADD", Check: signature(tTS, tString, tBig, tTS), Eval: func(a []Value) (Value, error) {
		return timestampAdd(a[0].S, a[1].I, a[2].I)
	}})
	add(&Scalar{Name: "TIMESTAMPSUB", Check: signature(tTS, tString, tBig, tTS), Eval: func(a []Value) (Value, error) {
		if a[1].I == math.MinInt64 {
			return Value{}, fmt.Errorf("%d %s out of range", a[1].I, a[0].S)
		}
		return timestampAdd(a[0].S, -a[1].I, a[2].I)
	}})
	add(&Scalar{Name: "DATETRUNC", Check: signature(tTS, tString, tTS), Eval: func(a []Value) (Value, error) {
		t := time.UnixMilli(a[1].I).UTC()
		switch upper(a[0].S) {
		case "SECOND":
			t = t.Truncate(time.Second)
		case "MINUTE":
			t = t.Truncate(time.Minute)
		case "HOUR":
			t = t.Truncate(time.Hour)
		case "DAY":
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		case "MONTH":
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		case "YEAR":
			t = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		default:
			return Value{}, fmt.Errorf("unknown unit %q", a[0].S)
		}
		return ok(types.NewTimestamp(t.UnixMilli()))
	}})
	datePart := func(name string, f func(time.Time) int) {
		add(&Scalar{Name: name, Check: signature(tInt, tTS), Eval: func(a []Value) (Value, error) {
			return ok(i64(int64(f(time.UnixMilli(a[0].I).UTC()))))
		}})
	}
	datePart("YEAR", time.Time.Year)
	datePart("MONTH", func(t time.Time) int { return int(t.Month()) })
	datePart("DAYOFMONTH", time.Time.Day)
	datePart("HOUR", time.Time.Hour)
	datePart("DAYOFWEEK", func(t time.Time) int { return int(t.Weekday()) + 1 })

	// JSON.
	add(&Scalar{Name: "EXTRACTJSONFIELD", Check: signature(tString, tString, tString), Eval: extractJSON})
	add(&Scalar{Name: "JSON_ARRAY_LENGTH", Check: signature(tInt, tString), Eval: func(a []Value) (Value, error) {
		var arr []json.RawMessage
		if err := json.Unmarshal([]byte(a[0].S), &arr); err != nil {
			return Value{}, errors.New("not a JSON array")
		}
		return ok(i64(int64(len(arr))))
	}})
	add(&Scalar{Name: "IS_JSON_STRING", Check: signature(tBool, tString), Eval: func(a []Value) (Value, error) {
		return ok(types.NewBool(json.Valid([]byte(a[0].S))))
	}})
	add(&Scalar{Name: "TO_JSON_STRING", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 1, 1); err != nil {
			return nil, err
		}
		return tString, nil
	}, NullAware: true, Eval: func(a []Value) (Value, error) { return ok(s(string(types.AppendJSON(nil, a[0], nil)))) }})

	// Collections.
	add(&Scalar{Name: "ARRAY_LENGTH", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 1, 1); err != nil {
			return nil, err
		}
		return tInt, argKind(args, 0, types.Array, "an ARRAY")
	}, Eval: func(a []Value) (Value, error) { return ok(i64(int64(len(a[0].List())))) }})
	add(&Scalar{Name: "ARRAY_CONTAINS", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 2, 2); err != nil {
			return nil, err
		}
		if err := argKind(args, 0, types.Array, "an ARRAY"); err != nil {
			return nil, err
		}
		if args[0].Kind == types.Array {
			if _, ok := Common(args[0].Elem, args[1]); !ok {
				return nil, fmt.Errorf("%w: looking for %s in %s", ErrArgs, args[1], args[0])
			}
		}
		return tBool, nil
	}, Eval: func(a []Value) (Value, error) {
		return ok(types.NewBool(slices.ContainsFunc(a[0].List(), func(v Value) bool { return types.Equal(v, a[1]) })))
	}})
	add(&Scalar{Name: "ARRAY_JOIN", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 1, 2); err != nil {
			return nil, err
		}
		if len(args) == 2 {
			if err := argKind(args, 1, types.String, "STRING"); err != nil {
				return nil, err
			}
		}
		return tString, argKind(args, 0, types.Array, "an ARRAY")
	}, Eval: func(a []Value) (Value, error) {
		sep := ","
		if len(a) == 2 {
			sep = a[1].S
		}
		parts := make([]string, 0, len(a[0].List()))
		for _, v := range a[0].List() {
			parts = append(parts, v.String())
		}
		return ok(s(strings.Join(parts, sep)))
	}})
	add(&Scalar{Name: "MAP_KEYS", Check: func(args []*Type) (*Type, error) {
		if err := nargs(args, 1, 1); err != nil {
			return nil, err
		}
		return types.ArrayOf(tString), argKind(args, 0, types.Map, "a MAP")
	}, Eval: func(a []Value) (Value, error) {
		m := a[0].MapValue()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([]Value, len(keys))
		for i, k := range keys {
			out[i] = s(k)
		}
		return ok(types.NewArray(out))
	}})
	return m
}

// numeric1 accepts one number and returns its type.
func numeric1(args []*Type) (*Type, error) {
	if err := nargs(args, 1, 1); err != nil {
		return nil, err
	}
	if !args[0].Numeric() && args[0].Kind != types.Null {
		return nil, fmt.Errorf("%w: argument 1 is %s, expected a number", ErrArgs, args[0])
	}
	if args[0].Kind == types.Null {
		return tDouble, nil
	}
	return args[0], nil
}

// common accepts one or more arguments of a common type and returns it.
func common(args []*Type) (*Type, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: takes at least 1 argument", ErrArgs)
	}
	t := args[0]
	for _, a := range args[1:] {
		c, ok := Common(t, a)
		if !ok {
			return nil, fmt.Errorf("%w: %s and %s have no common type", ErrArgs, t, a)
		}
		t = c
	}
	return t, nil
}

func initcap(x string) string {
	r := []rune(strings.ToLower(x))
	start := true
	for i, c := range r {
		if start && unicode.IsLetter(c) {
			r[i] = unicode.ToUpper(c)
		}
		start = unicode.IsSpace(c)
	}
	return string(r)
}

// substring is SUBSTRING(s, pos[, len]) with 1-based positions counted in
// characters; a negative pos counts from the end.
func substring(a []Value) (Value, error) {
	r := []rune(a[0].S)
	pos := a[1].I
	if pos < 0 {
		pos = int64(len(r)) + pos + 1
	}
	if pos < 1 {
		pos = 1
	}
	start := min(pos-1, int64(len(r)))
	end := int64(len(r))
	if len(a) == 3 {
		if a[2].I < 0 {
			return Value{}, errors.New("negative length")
		}
		end = start + min(end-start, a[2].I) // no overflow for huge lengths
	}
	return ok(s(string(r[start:end])))
}

func padString(x string, n int64, fill string, left bool) (Value, error) {
	if n < 0 || n > 1<<20 {
		return Value{}, fmt.Errorf("pad length %d out of range", n)
	}
	r := []rune(x)
	if int64(len(r)) >= n {
		return ok(s(string(r[:n])))
	}
	if fill == "" {
		return Value{}, errors.New("empty padding")
	}
	f := []rune(fill)
	var p []rune
	for int64(len(p)+len(r)) < n {
		p = append(p, f[len(p)%len(f)])
	}
	if left {
		return ok(s(string(p) + x))
	}
	return ok(s(x + string(p)))
}

func location(a []Value) (*time.Location, error) {
	if len(a) < 3 {
		return time.UTC, nil
	}
	return time.LoadLocation(a[2].S)
}

func timestampAdd(unit string, n, ts int64) (Value, error) {
	var d time.Duration
	switch strings.TrimSuffix(upper(unit), "S") {
	case "MILLISECOND":
		d = time.Millisecond
	case "SECOND":
		d = time.Second
	case "MINUTE":
		d = time.Minute
	case "HOUR":
		d = time.Hour
	case "DAY":
		d = 24 * time.Hour
	default:
		return Value{}, fmt.Errorf("unknown unit %q", unit)
	}
	ms := d.Milliseconds()
	delta := n * ms
	if delta/ms != n || (delta > 0 && ts > math.MaxInt64-delta) || (delta < 0 && ts < math.MinInt64-delta) {
		return Value{}, fmt.Errorf("%d %s from %d ms is out of range", n, unit, ts)
	}
	return ok(types.NewTimestamp(ts + delta))
}

// JavaLayout converts a Java date pattern (yyyy-MM-dd HH:mm:ss.SSS, with
// 'quoted' text) into a Go time layout.
func JavaLayout(p string) string {
	repl := []struct{ java, goLayout string }{
		{"yyyy", "2006"}, {"yy", "06"}, {"MMMM", "January"}, {"MMM", "Jan"}, {"MM", "01"}, {"dd", "02"},
		{"HH", "15"}, {"hh", "03"}, {"mm", "04"}, {"ss", "05"}, {"SSS", "000"}, {"a", "PM"},
		{"XXX", "Z07:00"}, {"Z", "-0700"}, {"EEEE", "Monday"}, {"EEE", "Mon"},
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] == '\'' {
			j := strings.IndexByte(p[i+1:], '\'')
			if j < 0 {
				b.WriteString(p[i+1:])
				break
			}
			b.WriteString(p[i+1 : i+1+j])
			i += j + 2
			continue
		}
		matched := false
		for _, r := range repl {
			if strings.HasPrefix(p[i:], r.java) {
				b.WriteString(r.goLayout)
				i += len(r.java)
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(p[i])
			i++
		}
	}
	return b.String()
}

// extractJSON is EXTRACTJSONFIELD(json, '$.a.b[0]'): the value at the
// path as a string (JSON text for objects and arrays), NULL if absent.
func extractJSON(a []Value) (Value, error) {
	var doc any
	if err := json.Unmarshal([]byte(a[0].S), &doc); err != nil {
		return Value{}, errors.New("not JSON")
	}
	path := a[1].S
	if !strings.HasPrefix(path, "$") {
		return Value{}, fmt.Errorf("path %q does not start with $", path)
	}
	path = path[1:]
	for path != "" {
		switch path[0] {
		case '.':
			end := strings.IndexAny(path[1:], ".[")
			if end < 0 {
				end = len(path) - 1
			}
			obj, isObj := doc.(map[string]any)
			if !isObj {
				return Value{}, nil
			}
			doc = obj[path[1:1+end]]
			path = path[1+end:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return Value{}, fmt.Errorf("bad path %q", a[1].S)
			}
			idx, err := strconv.Atoi(path[1:end])
			arr, isArr := doc.([]any)
			if err != nil || !isArr || idx < 0 || idx >= len(arr) {
				return Value{}, nil
			}
			doc = arr[idx]
			path = path[end+1:]
		default:
			return Value{}, fmt.Errorf("bad path %q", a[1].S)
		}
	}
	switch d := doc.(type) {
	case nil:
		return Value{}, nil
	case string:
		return ok(s(d))
	}
	out, _ := json.Marshal(doc)
	return ok(s(string(out)))
}

type roundMode uint8

const (
	roundHalf  roundMode = iota // half away from zero
	roundCeil                   // towards +∞
	roundFloor                  // towards -∞
)

// roundDecimal rounds a DECIMAL to an integral value, keeping its scale.
func roundDecimal(v Value, mode roundMode) Value {
	p := int64(1)
	for range v.Sc {
		p *= 10
	}
	q, m := v.I/p, v.I%p
	switch {
	case m == 0:
	case mode == roundHalf:
		if 2*m >= p {
			q++
		} else if 2*m <= -p {
			q--
		}
	case mode == roundCeil:
		if m > 0 {
			q++
		}
	default:
		if m < 0 {
			q--
		}
	}
	return types.NewDecimal(q*p, int(v.Sc))
}
