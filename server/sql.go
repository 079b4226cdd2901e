package server

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sqlv1 "github.com/fjord-data/fjord/api/fjord/streamsql/v1"
	"github.com/fjord-data/fjord/streamsql"
)

// Errors of the SQL service.
var (
	errNoSQL        = errors.New("fjord: this server runs without streaming SQL (fjord serve --sql=false)")
	errTooManyQuery = errors.New("fjord: the server runs its maximum of concurrent SQL queries; try again later")
)

// sqlService implements streamsqlv1connect.StreamSQLServiceHandler over
// an Engine, and serves POST /v1/sql (sqlhttp.go).
type sqlService struct {
	engine *streamsql.Engine // nil: SQL is off
	opts   *Options
	drain  context.Context
	auth   *authorizer
	// slots bounds the concurrent Query streams: a query holds one slot
	// while it runs.
	slots chan struct{}
}

// statement checks one statement's size and syntax and that the caller
// may run it: a SELECT (query set) needs read on $all; SHOW, DESCRIBE and
// EXPLAIN need read on $all; other statements write (CREATE … AS SELECT
// appends to the store) and need write on $all. A SELECT is also planned,
// so that its errors come before any output; push reports whether it is
// a push query.
func (s *sqlService) statement(ctx context.Context, sql string, query bool) (push bool, err error) {
	if s.engine == nil {
		return false, connect.NewError(connect.CodeUnavailable, errNoSQL)
	}
	if len(sql) > s.opts.MaxStatementBytes {
		return false, connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("the statement has %d bytes, over the server's limit of %d", len(sql), s.opts.MaxStatementBytes))
	}
	stmts, err := streamsql.Split(sql)
	if err != nil {
		return false, sqlStatusError(err)
	}
	if len(stmts) != 1 {
		return false, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("want one statement, found %d", len(stmts)))
	}
	isQuery := streamsql.IsQuery(stmts[0])
	switch {
	case query && !isQuery:
		return false, connect.NewError(connect.CodeInvalidArgument, errors.New("Query runs a SELECT; run other statements with Execute"))
	case !query && isQuery:
		return false, connect.NewError(connect.CodeInvalidArgument, errors.New("Execute runs statements other than SELECT; run a SELECT with Query"))
	}
	perm := PermWrite
	if query || readOnlyStatement(stmts[0]) {
		perm = PermRead
	}
	if err := s.auth.need(ctx, perm, AllStreams); err != nil {
		return false, err
	}
	if query {
		if push, err = s.engine.Prepare(sql); err != nil {
			return false, sqlStatusError(err)
		}
	}
	return push, nil
}

// readOnlyStatement reports whether a canonical statement only reads the
// catalog.
func readOnlyStatement(canonical string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(canonical), " ")
	switch strings.ToUpper(word) {
	case "SHOW", "DESCRIBE", "EXPLAIN":
		return true
	}
	return false
}

func (s *sqlService) Execute(ctx context.Context, req *connect.Request[sqlv1.ExecuteRequest]) (*connect.Response[sqlv1.ExecuteResponse], error) {
	res, err := s.execute(ctx, req.Msg.GetSql())
	if err != nil {
		return nil, err
	}
	out := &sqlv1.ExecuteResponse{Message: res.Message, QueryId: res.QueryID, Columns: res.Columns, Plan: res.Plan}
	for _, r := range res.Rows {
		out.Rows = append(out.Rows, &sqlv1.TextRow{Values: r})
	}
	return connect.NewResponse(out), nil
}

// execute runs a statement other than a SELECT; its error is a
// *connect.Error.
func (s *sqlService) execute(ctx context.Context, sql string) (streamsql.Result, error) {
	if _, err := s.statement(ctx, sql, false); err != nil {
		return streamsql.Result{}, err
	}
	res, err := s.engine.Exec(ctx, sql)
	if err != nil {
		return res, sqlStatusError(err)
	}
	return res, nil
}

// query checks and starts a SELECT: it returns its changes (ending at
// drain with errShuttingDown), whether it is a push query, and a release
// func to call when done.
func (s *sqlService) query(ctx context.Context, sql string, fromStart bool, started func()) (changes iter.Seq2[streamsql.Change, error], push bool, release func(), err error) {
	if push, err = s.statement(ctx, sql, true); err != nil {
		return nil, false, nil, err
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, false, nil, connect.NewError(connect.CodeResourceExhausted, errTooManyQuery)
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.drain, cancel)
	release = func() { stop(); cancel(); <-s.slots }
	changes = func(yield func(streamsql.Change, error) bool) {
		for ch, err := range s.engine.Query(ctx, sql, &streamsql.QueryOptions{FromStart: fromStart, Started: started}) {
			if err != nil && errors.Is(err, context.Canceled) && s.drain.Err() != nil {
				err = errShuttingDown
			}
			if !yield(ch, err) || err != nil {
				return
			}
		}
	}
	return changes, push, release, nil
}

func (s *sqlService) Query(ctx context.Context, req *connect.Request[sqlv1.QueryRequest], stream *connect.ServerStream[sqlv1.QueryResponse]) error {
	// Headers go out as soon as a push query has joined its running query
	// (the first change may be long in coming), and not before: a client
	// that sees them may append and expect the change.
	var headerErr error
	started := func() { headerErr = stream.Send(nil) }
	changes, _, release, err := s.query(ctx, req.Msg.GetSql(), req.Msg.GetFromStart(), started)
	if err != nil {
		return err
	}
	defer release()
	first := true
	for ch, err := range changes {
		if headerErr != nil {
			return headerErr
		}
		if err != nil {
			return sqlStatusError(err)
		}
		msg := &sqlv1.QueryResponse{Change: changeToProto(&ch)}
		if first {
			first = false
			for _, c := range ch.Columns {
				msg.Columns = append(msg.Columns, &sqlv1.Column{Name: c.Name, Type: c.Type})
			}
		}
		// Send blocks while the client does not read; the query's buffer
		// fills meanwhile, and a client too slow ends with
		// RESOURCE_EXHAUSTED (streamsql.ErrSlowSubscriber).
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlService) Status(ctx context.Context, req *connect.Request[sqlv1.StatusRequest]) (*connect.Response[sqlv1.StatusResponse], error) {
	if s.engine == nil {
		return nil, connect.NewError(connect.CodeUnavailable, errNoSQL)
	}
	if err := s.auth.need(ctx, PermRead, AllStreams); err != nil {
		return nil, err
	}
	d, r, l, recent, err := s.engine.Errors(req.Msg.GetQueryId())
	if err != nil {
		return nil, sqlStatusError(err)
	}
	return connect.NewResponse(&sqlv1.StatusResponse{DecodeErrors: d, RuntimeErrors: r, LateEvents: l, Recent: recent}), nil
}

// sqlStatusError turns a streamsql error into a Connect error; errors of
// the store go through statusError.
func sqlStatusError(err error) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var syntax *streamsql.Error
	switch {
	case errors.As(err, &syntax) && strings.HasPrefix(syntax.Msg, "unknown stream or table "):
		// The planner's positioned error for a missing source (the
		// server test pins the wording).
		return connect.NewError(connect.CodeNotFound, err)
	case errors.As(err, &syntax):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, streamsql.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, streamsql.ErrExists):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.Is(err, streamsql.ErrInUse):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, streamsql.ErrSlowSubscriber):
		return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("%w; read faster or reconnect", err))
	case errors.Is(err, streamsql.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return statusError(err, nil)
}

var opToProto = map[streamsql.Op]sqlv1.Op{streamsql.Insert: sqlv1.Op_OP_INSERT, streamsql.Update: sqlv1.Op_OP_UPDATE, streamsql.Delete: sqlv1.Op_OP_DELETE}

func changeToProto(ch *streamsql.Change) *sqlv1.Change {
	out := &sqlv1.Change{Op: opToProto[ch.Op], Row: rowToProto(ch.Row, ch.Columns), Position: uint64(ch.Position)}
	if ch.Old != nil {
		out.Old = rowToProto(ch.Old, ch.Columns)
	}
	if !ch.WindowStart.IsZero() || !ch.WindowEnd.IsZero() {
		out.WindowStart, out.WindowEnd = timestamppb.New(ch.WindowStart), timestamppb.New(ch.WindowEnd)
	}
	return out
}

func rowToProto(row []any, cols []streamsql.Column) []*sqlv1.Value {
	out := make([]*sqlv1.Value, len(row))
	for i, v := range row {
		decimal := i < len(cols) && strings.HasPrefix(cols[i].Type, "DECIMAL")
		out[i] = valueToProto(v, decimal)
	}
	return out
}

// valueToProto converts a value of a Change (see streamsql.Change); a
// string is a decimal when its column is DECIMAL.
func valueToProto(v any, decimal bool) *sqlv1.Value {
	switch v := v.(type) {
	case bool:
		return &sqlv1.Value{Kind: &sqlv1.Value_Bool{Bool: v}}
	case int64:
		return &sqlv1.Value{Kind: &sqlv1.Value_Int{Int: v}}
	case float64:
		return &sqlv1.Value{Kind: &sqlv1.Value_Double{Double: v}}
	case string:
		if decimal {
			return &sqlv1.Value{Kind: &sqlv1.Value_Decimal{Decimal: v}}
		}
		return &sqlv1.Value{Kind: &sqlv1.Value_String_{String_: v}}
	case time.Time:
		return &sqlv1.Value{Kind: &sqlv1.Value_Timestamp{Timestamp: timestamppb.New(v)}}
	case []any:
		l := &sqlv1.ValueList{Values: make([]*sqlv1.Value, len(v))}
		for i, e := range v {
			l.Values[i] = valueToProto(e, false)
		}
		return &sqlv1.Value{Kind: &sqlv1.Value_Array{Array: l}}
	case map[string]any:
		m := &sqlv1.ValueMap{Entries: make(map[string]*sqlv1.Value, len(v))}
		for k, e := range v {
			m.Entries[k] = valueToProto(e, false)
		}
		return &sqlv1.Value{Kind: &sqlv1.Value_Map{Map: m}}
	}
	return &sqlv1.Value{} // NULL
}
