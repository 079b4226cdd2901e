package fn

import (
	"fmt"
	"slices"
	"sort"

	"github.com/fjord-data/fjord/streamsql/internal/types"
)

// Aggregate is an aggregate function.
type Aggregate struct {
	Name string
	// Check returns the result type for argument types. Star is COUNT(*).
	Check func(args []*Type, star bool) (*Type, error)
	// New returns an empty accumulator. retract says whether rows may be
	// retracted (the input is a table): accumulators then keep what they
	// need to take values back out.
	New func(args []*Type, retract bool) Accumulator
}

// Accumulator folds rows of one group. Arguments are evaluated by the
// caller; off is the input row's offset (its global position).
type Accumulator interface {
	Add(args []Value, off int64)
	// Retract removes a row added before.
	Retract(args []Value, off int64)
	// Merge adds everything another accumulator of the same call holds
	// (session windows merging).
	Merge(other Accumulator)
	Result() Value
	// State and Load save and restore the accumulator as a value.
	State() Value
	Load(Value) error
}

// LookupAggregate returns the aggregate called name, or nil.
func LookupAggregate(name string) *Aggregate { return aggregates()[name] }

func aggregates() map[string]*Aggregate {
	m := map[string]*Aggregate{}
	add := func(a *Aggregate) { m[a.Name] = a }
	one := func(check func(t *Type) (*Type, error)) func([]*Type, bool) (*Type, error) {
		return func(args []*Type, star bool) (*Type, error) {
			if star || len(args) != 1 {
				return nil, fmt.Errorf("%w: takes 1 argument", ErrArgs)
			}
			return check(args[0])
		}
	}
	anyType := func(t *Type) (*Type, error) { return t, nil }
	add(&Aggregate{Name: "COUNT", Check: func(args []*Type, star bool) (*Type, error) {
		if !star && len(args) != 1 {
			return nil, fmt.Errorf("%w: takes 1 argument or *", ErrArgs)
		}
		return tBig, nil
	}, New: func([]*Type, bool) Accumulator { return &count{} }})
	add(&Aggregate{Name: "SUM", Check: one(func(t *Type) (*Type, error) {
		if !t.Numeric() {
			return nil, fmt.Errorf("%w: SUM of %s", ErrArgs, t)
		}
		switch t.Kind {
		case types.Int:
			return tBig, nil
		case types.Decimal:
			return types.DecimalOf(types.MaxDecimalPrecision, t.Scale), nil
		}
		return t, nil
	}), New: func(args []*Type, _ bool) Accumulator {
		s := &sum{double: args[0].Kind == types.Double}
		if args[0].Kind == types.Decimal {
			s.scale = args[0].Scale + 1 // +1: a DECIMAL sum
		}
		return s
	}})
	add(&Aggregate{Name: "AVG", Check: one(func(t *Type) (*Type, error) {
		if !t.Numeric() {
			return nil, fmt.Errorf("%w: AVG of %s", ErrArgs, t)
		}
		return tDouble, nil
	}), New: func(args []*Type, _ bool) Accumulator { return &sum{double: true, avg: true} }})
	comparable := func(t *Type) (*Type, error) {
		if t.Kind == types.Map || t.Kind == types.Struct {
			return nil, fmt.Errorf("%w: %s values have no order", ErrArgs, t)
		}
		return t, nil
	}
	add(&Aggregate{Name: "MIN", Check: one(comparable), New: func(_ []*Type, r bool) Accumulator { return &extreme{want: -1, bag: newBag(r)} }})
	add(&Aggregate{Name: "MAX", Check: one(comparable), New: func(_ []*Type, r bool) Accumulator { return &extreme{want: 1, bag: newBag(r)} }})
	add(&Aggregate{Name: "COUNT_DISTINCT", Check: one(func(*Type) (*Type, error) { return tBig, nil }),
		New: func([]*Type, bool) Accumulator { return &distinct{bag: newBag(true)} }})
	add(&Aggregate{Name: "LATEST_BY_OFFSET", Check: one(anyType), New: func(_ []*Type, r bool) Accumulator { return &byOffset{latest: true, bag: newOffsetBag(r)} }})
	add(&Aggregate{Name: "EARLIEST_BY_OFFSET", Check: one(anyType), New: func(_ []*Type, r bool) Accumulator { return &byOffset{bag: newOffsetBag(r)} }})
	add(&Aggregate{Name: "COLLECT_LIST", Check: one(func(t *Type) (*Type, error) { return types.ArrayOf(t), nil }),
		New: func([]*Type, bool) Accumulator { return &collectList{} }})
	add(&Aggregate{Name: "COLLECT_SET", Check: one(func(t *Type) (*Type, error) { return types.ArrayOf(t), nil }),
		New: func([]*Type, bool) Accumulator { return &distinct{bag: newBag(true), set: true} }})
	add(&Aggregate{Name: "TOPK", Check: func(args []*Type, star bool) (*Type, error) {
		if star || len(args) != 2 || args[1].Kind != types.Int {
			return nil, fmt.Errorf("%w: takes a value and an integer k", ErrArgs)
		}
		t, err := comparable(args[0])
		return types.ArrayOf(t), err
	}, New: func([]*Type, bool) Accumulator { return &distinct{bag: newBag(true), topk: true} }})
	return m
}

// count is COUNT(*) (no args counted as rows) and COUNT(x).
type count struct{ n int64 }

func (c *count) Add(a []Value, _ int64) {
	if len(a) == 0 || !a[0].IsNull() {
		c.n++
	}
}
func (c *count) Retract(a []Value, _ int64) {
	if len(a) == 0 || !a[0].IsNull() {
		c.n--
	}
}
func (c *count) Merge(o Accumulator) { c.n += o.(*count).n }
func (c *count) Result() Value       { return i64(c.n) }
func (c *count) State() Value        { return i64(c.n) }
func (c *count) Load(v Value) error  { c.n = v.I; return nil }

// sum is SUM and AVG: NULL until a non-NULL value arrives.
type sum struct {
	double, avg bool
	scale       int // DECIMAL sums: the scale + 1; 0 otherwise
	// overflow counts how often i wrapped around: +1 past MaxInt64, -1
	// past MinInt64; the exact sum is i + overflow·2⁶⁴.
	overflow int64
	i        int64
	f        float64
	n        int64
}

func (s *sum) Add(a []Value, _ int64) {
	if a[0].IsNull() {
		return
	}
	s.n++
	if s.double {
		s.f += a[0].AsFloat()
	} else {
		s.i = s.addWrapped(s.i, a[0].I)
	}
}
func (s *sum) Retract(a []Value, _ int64) {
	if a[0].IsNull() {
		return
	}
	s.n--
	if s.double {
		s.f -= a[0].AsFloat()
	} else {
		r := s.i - a[0].I
		switch {
		case s.i >= 0 && a[0].I < 0 && r < 0:
			s.overflow++
		case s.i < 0 && a[0].I > 0 && r >= 0:
			s.overflow--
		}
		s.i = r
	}
}
func (s *sum) Merge(o Accumulator) {
	t := o.(*sum)
	s.i = s.addWrapped(s.i, t.i)
	s.n, s.f, s.overflow = s.n+t.n, s.f+t.f, s.overflow+t.overflow
}

// addWrapped returns x+y, counting a wrap-around in s.overflow.
func (s *sum) addWrapped(x, y int64) int64 {
	r := x + y
	switch {
	case x > 0 && y > 0 && r < 0:
		s.overflow++
	case x < 0 && y < 0 && r >= 0:
		s.overflow--
	}
	return r
}
func (s *sum) Result() Value {
	switch {
	case s.n == 0:
		return Value{}
	case !s.double && s.overflow != 0:
		return Value{} // beyond BIGINT (or DECIMAL(18, s))
	case s.scale > 0 && (s.i >= 1e18 || s.i <= -1e18):
		return Value{}
	case s.avg:
		return f64(s.f / float64(s.n))
	case s.double:
		return f64(s.f)
	case s.scale > 0:
		return types.NewDecimal(s.i, s.scale-1)
	}
	return i64(s.i)
}
func (s *sum) State() Value {
	return types.NewArray([]Value{i64(s.i), f64(s.f), i64(s.n), i64(s.overflow)})
}
func (s *sum) Load(v Value) error {
	l := v.List()
	if len(l) != 4 {
		return types.ErrCorrupt
	}
	s.i, s.f, s.n, s.overflow = l[0].I, l[1].F, l[2].I, l[3].I
	return nil
}

// bag is a multiset of values, kept only when retractions are possible.
type bag struct {
	on     bool
	counts map[string]*bagEntry
}

type bagEntry struct {
	v Value
	n int64
}

func newBag(on bool) bag { return bag{on: on, counts: map[string]*bagEntry{}} }

func (b *bag) add(v Value, n int64) {
	if !b.on {
		return
	}
	k := string(types.AppendKey(nil, v))
	e := b.counts[k]
	if e == nil {
		e = &bagEntry{v: v}
		b.counts[k] = e
	}
	e.n += n
	if e.n <= 0 {
		delete(b.counts, k)
	}
}

// sorted returns the distinct values in order.
func (b *bag) sorted() []*bagEntry {
	out := make([]*bagEntry, 0, len(b.counts))
	for _, e := range b.counts {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return types.Compare(out[i].v, out[j].v) < 0 })
	return out
}

func (b *bag) state() Value {
	var l []Value
	for _, e := range b.sorted() {
		l = append(l, e.v, i64(e.n))
	}
	return types.NewArray(l)
}

func (b *bag) load(v Value) {
	l := v.List()
	for i := 0; i+1 < len(l); i += 2 {
		b.add(l[i], l[i+1].I)
	}
}

// extreme is MIN and MAX.
type extreme struct {
	want int
	best Value
	bag  bag
}

func (e *extreme) Add(a []Value, _ int64) {
	if a[0].IsNull() {
		return
	}
	e.bag.add(a[0], 1)
	if e.best.IsNull() || types.Compare(a[0], e.best) == e.want {
		e.best = a[0]
	}
}
func (e *extreme) Retract(a []Value, _ int64) {
	if a[0].IsNull() {
		return
	}
	e.bag.add(a[0], -1)
	if types.Compare(a[0], e.best) == 0 {
		e.best = Value{}
		for _, x := range e.bag.counts {
			if e.best.IsNull() || types.Compare(x.v, e.best) == e.want {
				e.best = x.v
			}
		}
	}
}
func (e *extreme) Merge(o Accumulator) {
	t := o.(*extreme)
	for _, x := range t.bag.counts {
		e.bag.add(x.v, x.n)
	}
	if !t.best.IsNull() && (e.best.IsNull() || types.Compare(t.best, e.best) == e.want) {
		e.best = t.best
	}
}
func (e *extreme) Result() Value { return e.best }
func (e *extreme) State() Value  { return types.NewArray([]Value{e.best, e.bag.state()}) }
func (e *extreme) Load(v Value) error {
	l := v.List()
	if len(l) != 2 {
		return types.ErrCorrupt
	}
	e.best = l[0]
	e.bag.load(l[1])
	return nil
}

// distinct is COUNT_DISTINCT, COLLECT_SET (sorted) and TOPK (descending).
type distinct struct {
	bag       bag
	set, topk bool
	k         int64
}

func (d *distinct) Add(a []Value, _ int64) {
	if len(a) == 2 {
		d.k = a[1].I
	}
	if !a[0].IsNull() {
		d.bag.add(a[0], 1)
	}
}
func (d *distinct) Retract(a []Value, _ int64) {
	if !a[0].IsNull() {
		d.bag.add(a[0], -1)
	}
}
func (d *distinct) Merge(o Accumulator) {
	t := o.(*distinct)
	for _, x := range t.bag.counts {
		d.bag.add(x.v, x.n)
	}
	d.k = max(d.k, t.k)
}
func (d *distinct) Result() Value {
	if !d.set && !d.topk {
		return i64(int64(len(d.bag.counts)))
	}
	es := d.bag.sorted()
	var out []Value
	if d.topk {
		slices.Reverse(es)
		for _, e := range es {
			for range e.n {
				if int64(len(out)) < d.k {
					out = append(out, e.v)
				}
			}
		}
	} else {
		for _, e := range es {
			out = append(out, e.v)
		}
	}
	if out == nil {
		out = []Value{}
	}
	return types.NewArray(out)
}
func (d *distinct) State() Value { return types.NewArray([]Value{i64(d.k), d.bag.state()}) }
func (d *distinct) Load(v Value) error {
	l := v.List()
	if len(l) != 2 {
		return types.ErrCorrupt
	}
	d.k = l[0].I
	d.bag.load(l[1])
	return nil
}

// offsetBag keeps values by offset when retractions are possible.
type offsetBag struct {
	on bool
	m  map[int64]Value
}

func newOffsetBag(on bool) offsetBag { return offsetBag{on: on, m: map[int64]Value{}} }

// byOffset is LATEST_BY_OFFSET and EARLIEST_BY_OFFSET (NULLs ignored).
type byOffset struct {
	latest bool
	have   bool
	off    int64
	v      Value
	bag    offsetBag
}

func (b *byOffset) better(off int64) bool {
	return !b.have || b.latest && off >= b.off || !b.latest && off < b.off
}

func (b *byOffset) Add(a []Value, off int64) {
	if a[0].IsNull() {
		return
	}
	if b.bag.on {
		b.bag.m[off] = a[0]
	}
	if b.better(off) {
		b.have, b.off, b.v = true, off, a[0]
	}
}
func (b *byOffset) Retract(a []Value, off int64) {
	if a[0].IsNull() {
		return
	}
	delete(b.bag.m, off)
	if b.have && off == b.off {
		b.have, b.v = false, Value{}
		for o, v := range b.bag.m {
			if b.better(o) {
				b.have, b.off, b.v = true, o, v
			}
		}
	}
}
func (b *byOffset) Merge(o Accumulator) {
	t := o.(*byOffset)
	for off, v := range t.bag.m {
		b.bag.m[off] = v
	}
	if t.have && b.better(t.off) {
		b.have, b.off, b.v = true, t.off, t.v
	}
}
func (b *byOffset) Result() Value { return b.v }
func (b *byOffset) State() Value {
	l := []Value{types.NewBool(b.have), i64(b.off), b.v}
	offs := make([]int64, 0, len(b.bag.m))
	for o := range b.bag.m {
		offs = append(offs, o)
	}
	slices.Sort(offs)
	for _, o := range offs {
		l = append(l, i64(o), b.bag.m[o])
	}
	return types.NewArray(l)
}
func (b *byOffset) Load(v Value) error {
	l := v.List()
	if len(l) < 3 {
		return types.ErrCorrupt
	}
	b.have, b.off, b.v = l[0].Bool(), l[1].I, l[2]
	for i := 3; i+1 < len(l); i += 2 {
		b.bag.m[l[i].I] = l[i+1]
	}
	return nil
}

// collectList is COLLECT_LIST, in the order of the rows' offsets (arrival
// order; NULLs included, as in KSQL). Retract removes the element added
// at that offset.
type collectList struct {
	offs []int64
	vals []Value
}

func (c *collectList) Add(a []Value, off int64) {
	// In offset order, as Merge keeps it: a row can come back with an
	// earlier offset (a joined row whose later side was deleted).
	i := len(c.offs)
	for i > 0 && c.offs[i-1] > off {
		i--
	}
	c.offs = slices.Insert(c.offs, i, off)
	c.vals = slices.Insert(c.vals, i, a[0])
}
func (c *collectList) Retract(a []Value, off int64) {
	for i, o := range c.offs {
		if o == off && types.Equal(c.vals[i], a[0]) {
			c.offs = slices.Delete(c.offs, i, i+1)
			c.vals = slices.Delete(c.vals, i, i+1)
			return
		}
	}
}
func (c *collectList) Merge(o Accumulator) {
	t := o.(*collectList)
	type item struct {
		off int64
		v   Value
	}
	var all []item
	for i := range c.offs {
		all = append(all, item{c.offs[i], c.vals[i]})
	}
	for i := range t.offs {
		all = append(all, item{t.offs[i], t.vals[i]})
	}
	slices.SortStableFunc(all, func(a, b item) int { return int(a.off - b.off) })
	c.offs, c.vals = c.offs[:0], c.vals[:0]
	for _, it := range all {
		c.offs = append(c.offs, it.off)
		c.vals = append(c.vals, it.v)
	}
}
func (c *collectList) Result() Value { return types.NewArray(slices.Clone(c.vals)) }
func (c *collectList) State() Value {
	l := make([]Value, 0, 2*len(c.vals))
	for i := range c.vals {
		l = append(l, i64(c.offs[i]), c.vals[i])
	}
	return types.NewArray(l)
}
func (c *collectList) Load(v Value) error {
	l := v.List()
	for i := 0; i+1 < len(l); i += 2 {
		c.offs = append(c.offs, l[i].I)
		c.vals = append(c.vals, l[i+1])
	}
	return nil
}
