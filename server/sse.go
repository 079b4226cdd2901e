package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/eventstore"
)

// sseHandler serves GET /v1/subscribe as Server-Sent Events, for browsers
// (EventSource) and curl:
//
//	GET /v1/subscribe?category=order&from=start
//	GET /v1/subscribe?stream=order-42&from=end
//	GET /v1/subscribe?type=OrderPlaced&type=OrderPaid&prefix=order-
//
// Each event is a message whose id is its position and whose data is a
// JSON object; filtered subscriptions also send "checkpoint" events (id:
// the position considered), and one "caught-up" event when live. A client
// that reconnects with Last-Event-ID resumes after that position, which
// EventSource does by itself.
//
// from is "start", "end" (the default) or a number: the first position (or
// with stream, the first version) to send.
type sseHandler struct {
	store *eventstore.Store
	opts  *Options
	drain context.Context
	auth  *authorizer
	subs  *subscribers
}

// sseFlushEvery is how many events are written between flushes while
// catching up; once live, every event is flushed.
const sseFlushEvery = 64

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g, aerr := h.auth.fromHeader(r.Header)
	if aerr != nil {
		httpAuthError(w, aerr)
		return
	}
	ctx := context.WithValue(r.Context(), grantKey{}, g)
	opts, err := h.options(r.WithContext(ctx))
	if err != nil {
		if c := connect.CodeOf(err); c == connect.CodeUnauthenticated || c == connect.CodePermissionDenied {
			httpAuthError(w, err)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := h.auth.subscribe(ctx, &opts); err != nil {
		httpAuthError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.drain, cancel)()

	bw := bufio.NewWriterSize(w, 32<<10)
	rc := http.NewResponseController(w)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	sub := h.subs.start(ctx, h.store, "sse", &opts)
	defer h.subs.remove(sub)
	started, live, pending := false, false, 0
	for d, err := range h.store.Subscribe(ctx, opts) {
		if err != nil {
			if h.drain.Err() != nil && errors.Is(err, context.Canceled) {
				err = errShuttingDown
			}
			if !started {
				ce := statusError(err, nil)
				http.Error(w, ce.Message(), httpStatus(ce.Code()))
				return
			}
			if r.Context().Err() == nil {
				writeSSE(bw, "error", "", map[string]string{"code": connect.CodeOf(statusError(err, nil)).String(), "message": err.Error()})
				flush()
			}
			return
		}
		if !started {
			started = true
			hd := w.Header()
			hd.Set("Content-Type", "text/event-stream")
			hd.Set("Cache-Control", "no-cache")
			hd.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		switch d.Kind {
		case eventstore.DeliveredEvent:
			err = writeSSE(bw, "", pos(d.Position), sseEvent(&d.Event))
		case eventstore.DeliveredCheckpoint:
			err = writeSSE(bw, "checkpoint", pos(d.Position), map[string]uint64{"position": uint64(d.Position)})
		case eventstore.DeliveredCaughtUp:
			live = true
			err = writeSSE(bw, "caught-up", "", map[string]uint64{"position": uint64(d.Position)})
		}
		if pending++; err == nil && (live || pending >= sseFlushEvery) {
			pending, err = 0, flush()
		}
		if err != nil {
			return // the client went away
		}
		h.subs.sent(sub, &d)
	}
}

func pos(p eventstore.Position) string { return strconv.FormatUint(uint64(p), 10) }

// options turns the query and Last-Event-ID into subscription options.
func (h *sseHandler) options(r *http.Request) (eventstore.SubscribeOptions, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "stream", "category", "type", "prefix", "from", "checkpoint":
		default:
			return eventstore.SubscribeOptions{}, fmt.Errorf("unknown query parameter %q (want stream, category, type, prefix, from, checkpoint)", k)
		}
	}
	var types []string
	for _, t := range q["type"] {
		types = append(types, strings.Split(t, ",")...)
	}
	o := eventstore.SubscribeOptions{
		Stream:             eventstore.StreamID(q.Get("stream")),
		Filter:             eventstore.Filter{Category: q.Get("category"), StreamPrefix: q.Get("prefix"), EventTypes: types},
		CheckpointInterval: time.Second,
		PageSize:           min(h.opts.PageEvents, 512),
	}
	if c := q.Get("checkpoint"); c != "" {
		d, err := time.ParseDuration(c)
		if err != nil || d < 0 {
			return o, fmt.Errorf("invalid checkpoint %q: want a duration such as 1s or 0s", c)
		}
		o.CheckpointInterval = d
	}
	var after uint64 // deliver events after this position (or version)
	switch from := q.Get("from"); from {
	case "start":
	case "", "end":
		after = ^uint64(0)
	default:
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return o, fmt.Errorf("invalid from %q: want start, end or a number", from)
		}
		after = max(n, 1) - 1
	}
	resumeAt := ^uint64(0)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return o, fmt.Errorf("invalid Last-Event-ID %q: want a position", id)
		}
		resumeAt = n
	}
	if o.Stream == "" {
		o.From = eventstore.Position(after)
		if resumeAt != ^uint64(0) {
			o.From = eventstore.Position(resumeAt)
		}
		return o, nil
	}
	o.AfterVersion = eventstore.Version(after)
	if resumeAt != ^uint64(0) {
		v, err := versionAt(r.Context(), h.store, o.Stream, eventstore.Position(resumeAt))
		if err != nil {
			return o, err
		}
		o.AfterVersion = v
	}
	return o, nil
}

// versionAt returns the version of the last event of stream at or before
// position p (0 when there is none), by binary search over versions: a
// stream's positions grow with its versions.
func versionAt(ctx context.Context, st *eventstore.Store, stream eventstore.StreamID, p eventstore.Position) (eventstore.Version, error) {
	info, err := st.StreamInfo(ctx, stream)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case info.Position <= p:
		return info.Version, nil
	}
	lo, hi := eventstore.Version(0), info.Version
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		var at eventstore.Position
		for e, err := range st.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: mid, Limit: 1}) {
			if err != nil {
				return 0, err
			}
			at = e.Position
		}
		if at <= p {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// sseEventJSON is an event as the SSE endpoint sends it: data inline when
// it is JSON, else base64 in dataBase64.
type sseEventJSON struct {
	ID            string          `json:"id"`
	Stream        string          `json:"stream"`
	Version       uint64          `json:"version"`
	Position      uint64          `json:"position"`
	Type          string          `json:"type"`
	ContentType   string          `json:"contentType"`
	Time          time.Time       `json:"time"`
	Data          json.RawMessage `json:"data,omitempty"`
	DataBase64    string          `json:"dataBase64,omitempty"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	MetadataB64   string          `json:"metadataBase64,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	CausationID   string          `json:"causationId,omitempty"`
}

func sseEvent(e *eventstore.RecordedEvent) *sseEventJSON {
	out := &sseEventJSON{ID: e.ID.String(), Stream: string(e.Stream), Version: uint64(e.Version), Position: uint64(e.Position),
		Type: e.Type, ContentType: e.ContentType, Time: e.Time, CorrelationID: e.CorrelationID, CausationID: e.CausationID}
	jsonish := strings.HasPrefix(e.ContentType, "application/json") || strings.HasSuffix(e.ContentType, "+json")
	inline := func(b []byte, raw *json.RawMessage, b64 *string) {
		switch {
		case len(b) == 0:
		case jsonish && json.Valid(b):
			*raw = b
		default:
			*b64 = base64.StdEncoding.EncodeToString(b)
		}
	}
	inline(e.Data, &out.Data, &out.DataBase64)
	inline(e.Metadata, &out.Metadata, &out.MetadataB64)
	return out
}

// writeSSE writes one Server-Sent Event. v is encoded as compact JSON on
// one data line (JSON never contains a raw newline).
func writeSSE(w *bufio.Writer, event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		w.WriteString("id: " + id + "\n")
	}
	if event != "" {
		w.WriteString("event: " + event + "\n")
	}
	w.WriteString("data: ")
	w.Write(b)
	_, err = w.WriteString("\n\n")
	return err
}

// httpStatus is the HTTP status for a Connect code, for plain HTTP
// endpoints.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeFailedPrecondition:
		return http.StatusConflict
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeCanceled:
		return 499
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
