package types

import (
	"errors"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// ErrDecimalRange reports a DECIMAL value with more digits than its type
// (or an int64) holds.
var ErrDecimalRange = errors.New("out of range")

// pow10 returns 10^n for 0 ≤ n ≤ 18.
func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// FormatDecimal writes unscaled × 10^-scale with exactly scale decimals.
func FormatDecimal(unscaled int64, scale int) string {
	neg := unscaled < 0
	digits := strconv.FormatUint(absU(unscaled), 10)
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func absU(i int64) uint64 {
	if i < 0 {
		return uint64(-(i + 1)) + 1
	}
	return uint64(i)
}

// ParseDecimal reads decimal text (optionally signed, with a fraction and
// an exponent) as a DECIMAL(precision, scale), rounding half away from
// zero to scale decimals.
func ParseDecimal(s string, precision, scale int) (Value, error) {
	s = strings.TrimSpace(s)
	// Bound the exponent before big.Rat expands it.
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 40 || e < -40 {
			return Value{}, ErrDecimalRange
		}
	}
	if len(s) > 100 {
		return Value{}, ErrDecimalRange
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return Value{}, errors.New("not a number")
	}
	return decimalFromRat(r, precision, scale)
}

func decimalFromRat(r *big.Rat, precision, scale int) (Value, error) {
	r = new(big.Rat).Mul(r, new(big.Rat).SetInt64(pow10(scale)))
	num, den := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	// Round half away from zero: |2m| >= den.
	if new(big.Int).Abs(new(big.Int).Mul(m, big.NewInt(2))).Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() || absU(q.Int64()) >= uint64(pow10(precision)) {
		return Value{}, ErrDecimalRange
	}
	return NewDecimal(q.Int64(), scale), nil
}

// Rescale converts a DECIMAL, integer or DOUBLE value to DECIMAL(precision,
// scale), rounding half away from zero.
func Rescale(v Value, precision, scale int) (Value, error) {
	switch v.K {
	case Int:
		return rescaleInt(v.I, 0, precision, scale)
	case Decimal:
		return rescaleInt(v.I, int(v.Sc), precision, scale)
	case Double:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return Value{}, ErrDecimalRange
		}
		r, _ := new(big.Rat).SetString(strconv.FormatFloat(v.F, 'g', -1, 64))
		return decimalFromRat(r, precision, scale)
	}
	return Value{}, errors.New("not a number")
}

func rescaleInt(i int64, from, precision, scale int) (Value, error) {
	limit := uint64(pow10(precision))
	if from <= scale {
		hi, lo := mul64(absU(i), uint64(pow10(scale-from)))
		if hi != 0 || lo >= limit {
			return Value{}, ErrDecimalRange
		}
		if i < 0 {
			return NewDecimal(-int64(lo), scale), nil
		}
		return NewDecimal(int64(lo), scale), nil
	}
	d := uint64(pow10(from - scale))
	q, m := absU(i)/d, absU(i)%d
	if 2*m >= d {
		q++
	}
	if q >= limit {
		return Value{}, ErrDecimalRange
	}
	if i < 0 {
		return NewDecimal(-int64(q), scale), nil
	}
	return NewDecimal(int64(q), scale), nil
}

// mul64 multiplies two uint64 into 128 bits.
func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }

// compareDecimal orders two DECIMAL or integer values exactly.
func compareDecimal(a, b Value) int {
	sa, sb := 0, 0
	if a.K == Decimal {
		sa = int(a.Sc)
	}
	if b.K == Decimal {
		sb = int(b.Sc)
	}
	if sa == sb {
		return cmpInt(a.I, b.I)
	}
	x := new(big.Int).Mul(big.NewInt(a.I), big.NewInt(pow10(max(sa, sb)-sa)))
	y := new(big.Int).Mul(big.NewInt(b.I), big.NewInt(pow10(max(sa, sb)-sb)))
	return x.Cmp(y)
}
