package streamsql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql/internal/exec"
	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// Errors.
var (
	// ErrSlowSubscriber ends a push query whose consumer fell so far behind
	// that its buffer (Options.SubscriberBuffer batches) filled up.
	ErrSlowSubscriber = errors.New("streamsql: subscriber too slow: its buffer is full")
	// ErrNotFound reports an unknown stream, table or query.
	ErrNotFound = errors.New("streamsql: not found")
	// ErrExists reports a stream or table that exists already.
	ErrExists = errors.New("streamsql: already exists")
	// ErrInUse reports a stream or table that a persistent query reads.
	ErrInUse = errors.New("streamsql: in use")
	// ErrRunning reports a second concurrent call of Run.
	ErrRunning = errors.New("streamsql: the engine is running already")
	// ErrClosed ends push queries when the engine closes.
	ErrClosed = errors.New("streamsql: the engine is closed")
)

// errDone ends a runner whose query reached its LIMIT.
var errDone = errors.New("streamsql: query done")

// Error is a syntax or semantic error at a position of the statement:
// "line L, column C: expected X, found Y".
type Error = parse.Error

// Options configure an Engine. The zero value works.
type Options struct {
	// State keeps the definitions and the state of persistent queries;
	// nil keeps them in memory, so nothing survives Close. The package
	// pebblestate keeps them on disk. Close closes it.
	State StateStore
	// IdleTimeout: when a query's input has been idle this long, stream
	// time starts moving on with the wall clock from where the last input
	// left it (checked every IdleTimeout), closing the windows it passes
	// (default 1s; negative: never).
	IdleTimeout time.Duration
	// BatchSize is the most events processed as one batch (default 512).
	BatchSize int
	// SubscriberBuffer is how many batches of changes a push subscriber
	// may fall behind before it is disconnected with ErrSlowSubscriber
	// (default 256).
	SubscriberBuffer int
	// DecodedGroups is how many groups of a persistent query's unwindowed
	// GROUP BY stay decoded between batches (default 16,384, at several
	// hundred bytes each; negative: none). The others are kept only
	// encoded, at about 100 bytes each, and decoded when a batch touches
	// them; the query's table reads its rows from that encoding.
	DecodedGroups int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Hooks observe the engine, for metrics and tracing.
	Hooks Hooks
}

// Hooks are optional callbacks. They run on the query's goroutine and must
// be fast and safe for concurrent use.
type Hooks struct {
	// OnBatch runs after every batch a query processed (and after every
	// idle watermark step).
	OnBatch func(BatchInfo)
}

// BatchInfo describes one processed batch.
type BatchInfo struct {
	// Query is the persistent query's id, or "push" for a push query.
	Query    string
	Events   int // input events in the batch
	Changes  int // output changes
	Position uint64
	Duration time.Duration // processing and output, without waiting for input
}

// Engine runs streaming SQL over an event store: DDL and persistent
// queries through Exec, push and pull queries through Query. It is safe for
// concurrent use.
type Engine struct {
	store *eventstore.Store
	opts  Options
	log   *slog.Logger
	state StateStore
	qwg   sync.WaitGroup // persistent queries' goroutines (owned by Run)
	twg   sync.WaitGroup // transient push queries' goroutines
	// Lock order: e.mu before any hub's or table's lock.
	mu struct {
		sync.Mutex
		sources map[string]*plan.Source // by upper-case name
		defSeq  map[string]uint64       // source name → its definition
		queries map[string]*persistent  // by id
		shared  map[string]*pushQuery   // running shared push queries by canonical SQL
		push    map[string]*pushQuery   // every running push query by id
		pushSeq int
		nextSeq uint64
		runCtx  context.Context // set while Run runs
		closed  bool
		tctx    context.Context // transient queries' parent
		tcancel context.CancelFunc
	}
}

// New opens an engine over store and restores its definitions; persistent
// queries start when Run is called. opts may be nil.
func New(store *eventstore.Store, opts *Options) (*Engine, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.SubscriberBuffer <= 0 {
		o.SubscriberBuffer = 256
	}
	if o.DecodedGroups == 0 {
		o.DecodedGroups = 1 << 14
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st := o.State
	if st == nil {
		st = newMemState()
	}
	e := &Engine{store: store, opts: o, log: o.Logger, state: st}
	e.mu.sources = map[string]*plan.Source{}
	e.mu.defSeq = map[string]uint64{}
	e.mu.queries = map[string]*persistent{}
	e.mu.shared = map[string]*pushQuery{}
	e.mu.push = map[string]*pushQuery{}
	e.mu.tctx, e.mu.tcancel = context.WithCancel(context.Background())
	defs, err := st.Definitions()
	if err != nil {
		st.Close()
		return nil, err
	}
	for i := range defs {
		d := &defs[i]
		stmt, err := parse.Parse(d.SQL)
		if err == nil {
			e.mu.nextSeq = d.Seq
			_, err = e.create(stmt.(*parse.CreateSource), d)
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("streamsql: restoring %q: %w", d.SQL, err)
		}
		e.mu.nextSeq = max(e.mu.nextSeq, d.Seq)
	}
	return e, nil
}

// Run runs the persistent queries (those defined before and those created
// while it runs) until ctx ends, then waits for them to stop and returns
// nil. A query that fails is logged, reported by SHOW QUERIES and stopped;
// the others go on.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.mu.runCtx != nil {
		e.mu.Unlock()
		return ErrRunning
	}
	e.mu.runCtx = ctx
	for _, p := range e.mu.queries {
		e.startLocked(p)
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.qwg.Wait()
	e.mu.Lock()
	e.mu.runCtx = nil
	e.mu.Unlock()
	return nil
}

// Close ends push queries (with ErrClosed) and closes the state store.
// Call it after Run has returned.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.mu.closed = true
	e.mu.tcancel()
	for _, p := range e.mu.queries {
		if p.table != nil {
			p.table.hub.close(ErrClosed)
		}
	}
	e.mu.Unlock()
	e.twg.Wait()
	e.qwg.Wait()
	return e.state.Close()
}

// catalog is a snapshot of the sources, for planning.
type catalog map[string]*plan.Source

func (c catalog) Source(name string) (*plan.Source, bool) {
	s, ok := c[strings.ToUpper(name)]
	return s, ok
}

func (e *Engine) catalogLocked() catalog {
	c := make(catalog, len(e.mu.sources))
	for k, v := range e.mu.sources {
		c[k] = v
	}
	return c
}

// Result is what Exec returns: a message, and for SHOW and DESCRIBE a
// small table, for EXPLAIN the plan.
type Result struct {
	Message string
	QueryID string // the persistent query a CREATE … AS SELECT started
	Columns []string
	Rows    [][]string
	Plan    string
}

// Exec runs one statement other than a SELECT: CREATE STREAM|TABLE (with
// columns, or AS SELECT to start a persistent query), DROP, SHOW
// STREAMS|TABLES|QUERIES, DESCRIBE, EXPLAIN, TERMINATE. Definitions are
// durable when Exec returns.
//
// Dropping a stream or table made by CREATE … AS SELECT also terminates
// its query and deletes its state; TERMINATE q does the same as dropping
// what q writes. A source that a persistent query reads cannot be dropped
// (ErrInUse). Errors in the statement are *Error values with a position.
func (e *Engine) Exec(ctx context.Context, sql string) (Result, error) {
	stmt, err := parse.Parse(sql)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	switch s := stmt.(type) {
	case *parse.CreateSource:
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.create(s, nil)
	case *parse.Drop:
		return e.drop(s)
	case *parse.Terminate:
		e.mu.Lock()
		p := e.mu.queries[strings.ToUpper(s.QueryID)]
		e.mu.Unlock()
		if p == nil {
			return Result{}, fmt.Errorf("%w: query %s", ErrNotFound, s.QueryID)
		}
		return e.drop(&parse.Drop{Pos: s.Pos, Table: p.target.Table, Name: p.target.Name})
	case *parse.Show:
		return e.show(s), nil
	case *parse.Describe:
		return e.describe(s)
	case *parse.Explain:
		return e.explain(s)
	case *parse.Select:
		return Result{}, &Error{Pos: s.Pos, Msg: "a SELECT runs with Query, not Exec"}
	}
	return Result{}, &Error{Pos: stmt.Position(), Msg: "unsupported statement"}
}

// create defines a source, and for … AS SELECT its persistent query. With
// restore set, it re-creates a stored definition.
func (e *Engine) create(s *parse.CreateSource, restore *Definition) (Result, error) {
	name := strings.ToUpper(s.Name)
	if _, exists := e.mu.sources[name]; exists {
		if s.IfNotExists {
			return Result{Message: s.Name + " exists already"}, nil
		}
		if !s.OrReplace || s.As != nil {
			return Result{}, fmt.Errorf("%w: %s", ErrExists, s.Name)
		}
		if _, err := e.dropLocked(name); err != nil {
			return Result{}, err
		}
	}
	var src *plan.Source
	var q *plan.Query
	var err error
	if s.As != nil {
		if q, err = plan.Select(s.As, e.catalogLocked()); err == nil {
			src, err = plan.Derive(s, q)
		}
		if err == nil && !s.Table && overlaps(src.Input, q.Source.Input) {
			err = &Error{Pos: s.Pos, Msg: fmt.Sprintf("%s would read its own output (SOURCE overlaps %s's)", s.Name, q.Source.Name)}
		}
	} else {
		src, err = plan.Create(s)
	}
	if err != nil {
		return Result{}, err
	}
	def := restore
	if def == nil {
		e.mu.nextSeq++
		def = &Definition{SQL: parse.String(s), Seq: e.mu.nextSeq}
		if q != nil {
			kind := "CSAS"
			if s.Table {
				kind = "CTAS"
			}
			def.QueryID = fmt.Sprintf("%s_%s_%d", kind, sanitize(name), def.Seq)
		}
		if err := e.state.AddDefinition(*def); err != nil {
			return Result{}, err
		}
	}
	e.mu.sources[name] = src
	e.mu.defSeq[name] = def.Seq
	res := Result{Message: fmt.Sprintf("%s %s created", kind(s.Table), s.Name)}
	if q != nil {
		src.Query = def.QueryID
		p := newPersistent(e, def.QueryID, q, src)
		if restore != nil {
			if err := p.load(); err != nil {
				return Result{}, err
			}
		}
		e.mu.queries[def.QueryID] = p
		if e.mu.runCtx != nil {
			e.startLocked(p)
		}
		res.QueryID = def.QueryID
		res.Message += ", query " + def.QueryID + " started"
	}
	return res, nil
}

func kind(table bool) string {
	if table {
		return "table"
	}
	return "stream"
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// overlaps reports whether a stream query's output could feed its input.
func overlaps(out, in plan.Input) bool {
	switch {
	case in.All:
		return true
	case out.Stream != "":
		return in.Stream == out.Stream || in.Category != "" && strings.HasPrefix(out.Stream, in.Category+"-")
	}
	return in.Category == out.Category || in.Stream != "" && strings.HasPrefix(in.Stream, out.Category+"-")
}

func (e *Engine) drop(s *parse.Drop) (Result, error) {
	e.mu.Lock()
	name := strings.ToUpper(s.Name)
	src, ok := e.mu.sources[name]
	if !ok {
		e.mu.Unlock()
		if s.IfExists {
			return Result{Message: s.Name + " does not exist"}, nil
		}
		return Result{}, fmt.Errorf("%w: %s %s", ErrNotFound, kind(s.Table), s.Name)
	}
	if src.Table != s.Table {
		e.mu.Unlock()
		return Result{}, &Error{Pos: s.Pos, Msg: fmt.Sprintf("%s is a %s", s.Name, kind(src.Table))}
	}
	p, err := e.dropLocked(name)
	e.mu.Unlock()
	if err != nil {
		return Result{}, err
	}
	msg := fmt.Sprintf("%s %s dropped", kind(s.Table), s.Name)
	if p != nil {
		p.stop()
		if err := e.state.DropQuery(p.id); err != nil {
			return Result{}, err
		}
		msg += ", query " + p.id + " terminated"
	}
	return Result{Message: msg}, nil
}

// dropLocked removes a source (and returns the query writing it, which
// the caller stops) unless a persistent query reads it.
func (e *Engine) dropLocked(name string) (*persistent, error) {
	for _, id := range sortedMapKeys(e.mu.queries) {
		p := e.mu.queries[id]
		if strings.EqualFold(p.q.Source.Name, name) || slices.ContainsFunc(p.q.Joins, func(j *plan.Join) bool { return strings.EqualFold(j.Right.Name, name) }) {
			return nil, fmt.Errorf("%w: %s is read by query %s (drop what it writes first)", ErrInUse, strings.ToLower(name), p.id)
		}
	}
	src := e.mu.sources[name]
	if err := e.state.DeleteDefinition(e.mu.defSeq[name]); err != nil {
		return nil, err
	}
	delete(e.mu.sources, name)
	delete(e.mu.defSeq, name)
	if src.Query == "" {
		return nil, nil
	}
	p := e.mu.queries[src.Query]
	delete(e.mu.queries, src.Query)
	return p, nil
}

func (e *Engine) show(s *parse.Show) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res Result
	switch s.What {
	case "QUERIES":
		res.Columns = []string{"id", "state", "writes", "position", "decode errors", "runtime errors", "late events", "sql"}
		for _, id := range sortedMapKeys(e.mu.queries) {
			p := e.mu.queries[id]
			d, r, l := p.errs.Counts()
			res.Rows = append(res.Rows, []string{id, p.status(), p.target.Name, fmt.Sprint(p.position()),
				fmt.Sprint(d), fmt.Sprint(r), fmt.Sprint(l), p.target.SQL})
		}
		for _, id := range sortedMapKeys(e.mu.push) {
			pq := e.mu.push[id]
			d, r, l := pq.errs.Counts()
			res.Rows = append(res.Rows, []string{id, fmt.Sprintf("push (%d subscribers)", pq.hub.count()), "", fmt.Sprint(pq.pos.Load()),
				fmt.Sprint(d), fmt.Sprint(r), fmt.Sprint(l), pq.sql})
		}
	default:
		res.Columns = []string{"name", "source", "key", "query"}
		for _, n := range sortedMapKeys(e.mu.sources) {
			src := e.mu.sources[n]
			if src.Table != (s.What == "TABLES") {
				continue
			}
			key := ""
			if src.Key >= 0 {
				key = src.Columns[src.Key].Name
			}
			in := src.Input.String()
			if src.Materialized {
				in = "materialized"
			}
			res.Rows = append(res.Rows, []string{src.Name, in, key, src.Query})
		}
	}
	return res
}

func (e *Engine) describe(s *parse.Describe) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, ok := e.mu.sources[strings.ToUpper(s.Name)]
	if !ok {
		return Result{}, fmt.Errorf("%w: %s", ErrNotFound, s.Name)
	}
	res := Result{Columns: []string{"column", "type", "key"}, Message: src.SQL}
	for i, c := range src.RowColumns() {
		k := ""
		switch {
		case i == src.Key:
			k = "KEY"
			if src.Table {
				k = "PRIMARY KEY"
			}
		case i >= len(src.Columns):
			k = "(pseudo)"
		}
		res.Rows = append(res.Rows, []string{c.Name, c.Type.String(), k})
	}
	return res, nil
}

func (e *Engine) explain(s *parse.Explain) (Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var q *plan.Query
	var err error
	switch st := s.Stmt.(type) {
	case *parse.Select:
		q, err = plan.Select(st, e.catalogLocked())
	case *parse.CreateSource:
		if st.As == nil {
			return Result{}, &Error{Pos: st.Pos, Msg: "EXPLAIN takes a query or CREATE … AS SELECT"}
		}
		q, err = plan.Select(st.As, e.catalogLocked())
	case nil:
		p := e.mu.queries[strings.ToUpper(s.QueryID)]
		if p == nil {
			return Result{}, fmt.Errorf("%w: query %s", ErrNotFound, s.QueryID)
		}
		q = p.q
	default:
		return Result{}, &Error{Pos: s.Pos, Msg: "EXPLAIN takes a query or CREATE … AS SELECT"}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Plan: q.Explain()}, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Errors returns the decode errors, runtime errors and late events a
// persistent query or a running push query (PUSH_n, as SHOW QUERIES
// lists them) counted, and its most recent messages.
func (e *Engine) Errors(queryID string) (decode, runtime, late int64, recent []string, err error) {
	e.mu.Lock()
	var log *exec.ErrorLog
	if p := e.mu.queries[strings.ToUpper(queryID)]; p != nil {
		log = p.errs
	} else if pq := e.mu.push[strings.ToUpper(queryID)]; pq != nil {
		log = pq.errs
	}
	e.mu.Unlock()
	if log == nil {
		return 0, 0, 0, nil, fmt.Errorf("%w: query %s", ErrNotFound, queryID)
	}
	d, r, l := log.Counts()
	return d, r, l, log.Recent(), nil
}
