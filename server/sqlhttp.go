package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/streamsql"
)

// sqlHTTP serves POST /v1/sql, for curl and browsers: the body is one
// statement. A SELECT streams its changes as newline-delimited JSON
// (the default, Content-Type application/x-ndjson) or, when the request
// accepts text/event-stream, as Server-Sent Events ("change" events whose
// id is the position, and an "error" event if the query fails after it
// started). Other statements answer one JSON object (sqlResultJSON).
// Errors in the statement are plain HTTP errors with the status of their
// code; a push query then answers 200 at once, and a failure after that
// (a slow reader, the server draining) ends the stream with an error
// object {"error": {"code": …, "message": …}} or "error" event.
type sqlHTTP struct{ svc *sqlService }

// sqlChangeJSON is one change as POST /v1/sql streams it: the row as an
// object by column name. 64-bit integers are JSON numbers; non-finite
// doubles are the strings "NaN", "+Inf" and "-Inf"; timestamps RFC 3339.
type sqlChangeJSON struct {
	Op          string         `json:"op"` // "insert", "update" or "delete"
	Row         map[string]any `json:"row"`
	Old         map[string]any `json:"old,omitempty"`
	WindowStart *time.Time     `json:"windowStart,omitempty"`
	WindowEnd   *time.Time     `json:"windowEnd,omitempty"`
	Position    uint64         `json:"position"`
}

// sqlResultJSON is the answer to a statement other than a SELECT.
type sqlResultJSON struct {
	Message string     `json:"message,omitempty"`
	QueryID string     `json:"queryId,omitempty"`
	Columns []string   `json:"columns,omitempty"`
	Rows    [][]string `json:"rows,omitempty"`
	Plan    string     `json:"plan,omitempty"`
}

// sqlErrorJSON ends an NDJSON stream that failed after it started.
type sqlErrorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (h *sqlHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g, aerr := h.svc.auth.fromHeader(r.Header)
	if aerr != nil {
		httpAuthError(w, aerr)
		return
	}
	ctx := context.WithValue(r.Context(), grantKey{}, g)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.svc.opts.MaxStatementBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "the statement is over the server's limit of "+strconv.Itoa(h.svc.opts.MaxStatementBytes)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sql := string(body)
	if !streamsql.IsQuery(sql) {
		res, err := h.svc.execute(ctx, sql)
		if err != nil {
			httpError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&sqlResultJSON{Message: res.Message, QueryID: res.QueryID, Columns: res.Columns, Rows: res.Rows, Plan: res.Plan})
		return
	}
	fromStart := r.URL.Query().Get("from") == "start"
	var onStart func() // set by stream before the query starts
	changes, _, release, err := h.svc.query(ctx, sql, fromStart, func() { onStart() })
	if err != nil {
		httpError(w, err)
		return
	}
	defer release()
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	h.stream(w, r, changes, sse, &onStart)
}

// stream writes changes as NDJSON or SSE, flushing each (push queries
// print as changes arrive).
//
// A push query answers as soon as it has joined its running query
// (onStart), not before, since a client that sees the answer may append
// and expect the change; its first change may be long in coming.
func (h *sqlHTTP) stream(w http.ResponseWriter, r *http.Request, changes func(func(streamsql.Change, error) bool), sse bool, onStart *func()) {
	bw := bufio.NewWriterSize(w, 32<<10)
	rc := http.NewResponseController(w)
	started := false
	start := func() {
		started = true
		ct := "application/x-ndjson"
		if sse {
			ct = "text/event-stream"
			w.Header().Set("X-Accel-Buffering", "no")
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
	}
	*onStart = func() {
		start()
		rc.Flush()
	}
	for ch, err := range changes {
		if err != nil {
			ce := sqlStatusError(err)
			if !started {
				httpError(w, ce)
				return
			}
			if r.Context().Err() != nil {
				return // the client went away
			}
			var e sqlErrorJSON
			e.Error.Code, e.Error.Message = ce.Code().String(), ce.Message()
			if sse {
				writeSSE(bw, "error", "", e.Error)
			} else {
				writeJSONLine(bw, &e)
			}
			bw.Flush()
			rc.Flush()
			return
		}
		if !started {
			start()
		}
		c := changeJSON(&ch)
		if sse {
			err = writeSSE(bw, "change", pos(ch.Position), c)
		} else {
			err = writeJSONLine(bw, c)
		}
		if err == nil {
			if err = bw.Flush(); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			return // the client went away
		}
	}
	if !started { // a pull query without rows
		start()
	}
	bw.Flush()
}

func writeJSONLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// httpError writes a *connect.Error as a plain HTTP error.
func httpError(w http.ResponseWriter, err error) {
	if c := connect.CodeOf(err); c == connect.CodeUnauthenticated || c == connect.CodePermissionDenied {
		httpAuthError(w, err)
		return
	}
	ce := sqlStatusError(err)
	http.Error(w, ce.Message(), httpStatus(ce.Code()))
}

func changeJSON(ch *streamsql.Change) *sqlChangeJSON {
	out := &sqlChangeJSON{Op: strings.ToLower(ch.Op.String()), Row: rowJSON(ch.Row, ch.Columns), Position: uint64(ch.Position)}
	if ch.Old != nil {
		out.Old = rowJSON(ch.Old, ch.Columns)
	}
	if !ch.WindowStart.IsZero() || !ch.WindowEnd.IsZero() {
		out.WindowStart, out.WindowEnd = &ch.WindowStart, &ch.WindowEnd
	}
	return out
}

func rowJSON(row []any, cols []streamsql.Column) map[string]any {
	out := make(map[string]any, len(row))
	for i, v := range row {
		if i < len(cols) {
			out[cols[i].Name] = jsonValue(v)
		}
	}
	return out
}

// jsonValue makes a value encodable: encoding/json refuses non-finite
// floats.
func jsonValue(v any) any {
	switch v := v.(type) {
	case float64:
		switch {
		case math.IsNaN(v):
			return "NaN"
		case math.IsInf(v, 1):
			return "+Inf"
		case math.IsInf(v, -1):
			return "-Inf"
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}
