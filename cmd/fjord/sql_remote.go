package main

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"

	"connectrpc.com/connect"

	sqlv1 "github.com/fjord-data/fjord/api/fjord/streamsql/v1"
	"github.com/fjord-data/fjord/api/fjord/streamsql/v1/streamsqlv1connect"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql"
)

// sqlRunner runs statements: a local *streamsql.Engine, or remoteSQL.
type sqlRunner interface {
	Exec(ctx context.Context, sql string) (streamsql.Result, error)
	Query(ctx context.Context, sql string, opts *streamsql.QueryOptions) iter.Seq2[streamsql.Change, error]
}

// remoteSQL runs statements on the StreamSQLService of `fjord serve`.
type remoteSQL struct {
	c  streamsqlv1connect.StreamSQLServiceClient
	hc *http.Client
}

func newRemoteSQL(baseURL, token string) (*remoteSQL, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(u.Scheme == "http")
	hc := &http.Client{Transport: &http.Transport{Protocols: &p, Proxy: http.ProxyFromEnvironment}}
	var opts []connect.ClientOption
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearerInterceptor(token)))
	}
	return &remoteSQL{c: streamsqlv1connect.NewStreamSQLServiceClient(hc, baseURL, opts...), hc: hc}, nil
}

// Close closes idle connections.
func (r *remoteSQL) Close() { r.hc.CloseIdleConnections() }

func (r *remoteSQL) Exec(ctx context.Context, sql string) (streamsql.Result, error) {
	res, err := r.c.Execute(ctx, connect.NewRequest(&sqlv1.ExecuteRequest{Sql: sql}))
	if err != nil {
		return streamsql.Result{}, err
	}
	m := res.Msg
	out := streamsql.Result{Message: m.GetMessage(), QueryID: m.GetQueryId(), Columns: m.GetColumns(), Plan: m.GetPlan()}
	for _, row := range m.GetRows() {
		out.Rows = append(out.Rows, row.GetValues())
	}
	return out, nil
}

func (r *remoteSQL) Query(ctx context.Context, sql string, opts *streamsql.QueryOptions) iter.Seq2[streamsql.Change, error] {
	return func(yield func(streamsql.Change, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, err := r.c.Query(ctx, connect.NewRequest(&sqlv1.QueryRequest{Sql: sql, FromStart: opts != nil && opts.FromStart}))
		if err != nil {
			yield(streamsql.Change{}, err)
			return
		}
		defer s.Close()
		var cols []streamsql.Column
		for s.Receive() {
			m := s.Msg()
			if cols == nil || len(m.GetColumns()) > 0 {
				cols = []streamsql.Column{}
				for _, c := range m.GetColumns() {
					cols = append(cols, streamsql.Column{Name: c.GetName(), Type: c.GetType()})
				}
			}
			if !yield(changeFromProto(m.GetChange(), cols), nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(streamsql.Change{}, err)
		}
	}
}

var opFromProto = map[sqlv1.Op]streamsql.Op{sqlv1.Op_OP_INSERT: streamsql.Insert, sqlv1.Op_OP_UPDATE: streamsql.Update, sqlv1.Op_OP_DELETE: streamsql.Delete}

func changeFromProto(c *sqlv1.Change, cols []streamsql.Column) streamsql.Change {
	out := streamsql.Change{Op: opFromProto[c.GetOp()], Columns: cols, Row: rowFromProto(c.GetRow()), Position: eventstore.Position(c.GetPosition())}
	if c.GetOld() != nil {
		out.Old = rowFromProto(c.GetOld())
	}
	if c.GetWindowStart() != nil {
		out.WindowStart, out.WindowEnd = c.GetWindowStart().AsTime(), c.GetWindowEnd().AsTime()
	}
	return out
}

func rowFromProto(vs []*sqlv1.Value) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = valueFromProto(v)
	}
	return out
}

// valueFromProto returns the Go value streamsql.Change documents.
func valueFromProto(v *sqlv1.Value) any {
	switch k := v.GetKind().(type) {
	case *sqlv1.Value_Bool:
		return k.Bool
	case *sqlv1.Value_Int:
		return k.Int
	case *sqlv1.Value_Double:
		return k.Double
	case *sqlv1.Value_String_:
		return k.String_
	case *sqlv1.Value_Decimal:
		return k.Decimal
	case *sqlv1.Value_Timestamp:
		return k.Timestamp.AsTime()
	case *sqlv1.Value_Array:
		return rowFromProto(k.Array.GetValues())
	case *sqlv1.Value_Map:
		m := make(map[string]any, len(k.Map.GetEntries()))
		for key, e := range k.Map.GetEntries() {
			m[key] = valueFromProto(e)
		}
		return m
	}
	return nil
}

// bearerInterceptor sends Authorization: Bearer token on every call.
type bearerInterceptor string

func (b bearerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
