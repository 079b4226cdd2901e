package telemetry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Default bounds of the viewer's span store.
const (
	DefaultViewerTraces   = 1000
	DefaultViewerSpans    = 20000
	DefaultSpansPerTrace  = 2000
	maxViewerAttrValueLen = 512
)

// ViewerOptions bound the memory the viewer keeps. Zero fields take the
// defaults above; negative ones are an error.
type ViewerOptions struct {
	// Traces is how many traces are kept; the oldest goes first.
	Traces int
	// Spans is how many spans are kept over all traces.
	Spans int
	// SpansPerTrace caps one trace; further spans are counted as dropped.
	SpansPerTrace int
}

// Viewer is an OpenTelemetry span processor that keeps the most recent
// traces in memory, bounded by ViewerOptions, and serves them over HTTP as
// waterfalls (see ServeHTTP). No collector is needed. It is safe for
// concurrent use.
type Viewer struct {
	opts ViewerOptions
	mu   struct {
		sync.Mutex
		traces map[trace.TraceID]*viewerTrace
		order  []trace.TraceID // oldest first
		spans  int
	}
}

type viewerTrace struct {
	id      trace.TraceID
	spans   []SpanRecord
	dropped int
	updated time.Time
}

// SpanRecord is what the viewer keeps of one ended span.
type SpanRecord struct {
	TraceID    string            `json:"trace_id"`
	SpanID     string            `json:"span_id"`
	ParentID   string            `json:"parent_id,omitempty"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Service    string            `json:"service"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Events     []EventRecord     `json:"events,omitempty"`
	Links      []string          `json:"links,omitempty"`
}

// Duration is how long the span took.
func (s SpanRecord) Duration() time.Duration { return s.End.Sub(s.Start) }

// EventRecord is one event of a span: a retry, a breaker decision, a cache
// status, an exception.
type EventRecord struct {
	Name       string            `json:"name"`
	Time       time.Time         `json:"time"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// NewViewer returns an empty viewer; Setup makes one for you.
func NewViewer(opts *ViewerOptions) (*Viewer, error) {
	v := &Viewer{}
	if opts != nil {
		v.opts = *opts
	}
	for _, f := range []struct {
		name  string
		value *int
		def   int
	}{{"Traces", &v.opts.Traces, DefaultViewerTraces}, {"Spans", &v.opts.Spans, DefaultViewerSpans},
		{"SpansPerTrace", &v.opts.SpansPerTrace, DefaultSpansPerTrace}} {
		switch {
		case *f.value < 0:
			return nil, fmt.Errorf("telemetry: ViewerOptions.%s is %d; it must be 0 (the default, %d) or more", f.name, *f.value, f.def)
		case *f.value == 0:
			*f.value = f.def
		}
	}
	v.mu.traces = make(map[trace.TraceID]*viewerTrace)
	return v, nil
}

// OnStart implements sdktrace.SpanProcessor; spans are kept when they end.
func (v *Viewer) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: it keeps the span, evicting the
// oldest traces while the store is over its bounds.
func (v *Viewer) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	rec := record(s)
	id := s.SpanContext().TraceID()
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.mu.traces[id]
	if !ok {
		t = &viewerTrace{id: id}
		v.mu.traces[id] = t
		v.mu.order = append(v.mu.order, id)
	}
	t.updated = rec.End
	if len(t.spans) >= v.opts.SpansPerTrace {
		t.dropped++
		return
	}
	t.spans = append(t.spans, rec)
	v.mu.spans++
	v.evictLocked(id)
}

// evictLocked drops the oldest traces (never keep, the one just written)
// while the store holds too many traces or spans.
func (v *Viewer) evictLocked(keep trace.TraceID) {
	for len(v.mu.order) > 1 && (len(v.mu.order) > v.opts.Traces || v.mu.spans > v.opts.Spans) {
		oldest := v.mu.order[0]
		if oldest == keep {
			v.mu.order = append(v.mu.order[1:], keep)
			continue
		}
		v.mu.order = v.mu.order[1:]
		v.mu.spans -= len(v.mu.traces[oldest].spans)
		delete(v.mu.traces, oldest)
	}
}

// Shutdown implements sdktrace.SpanProcessor; the kept traces stay readable.
func (v *Viewer) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor; there is nothing to flush.
func (v *Viewer) ForceFlush(context.Context) error { return nil }

// TraceSummary describes one kept trace.
type TraceSummary struct {
	TraceID  string        `json:"trace_id"`
	Root     string        `json:"root"`
	Service  string        `json:"service"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Spans    int           `json:"spans"`
	Errors   int           `json:"errors"`
	Dropped  int           `json:"dropped,omitempty"`
	// Orphans counts spans whose parent is not in the trace (yet): a trace
	// still in flight, or a parent that was never exported.
	Orphans int `json:"orphans"`
}

// Traces returns summaries of the kept traces, the most recently updated
// first.
func (v *Viewer) Traces() []TraceSummary {
	v.mu.Lock()
	out := make([]TraceSummary, 0, len(v.mu.traces))
	for _, t := range v.mu.traces {
		out = append(out, summarize(t.id, t.spans, t.dropped))
	}
	v.mu.Unlock()
	slices.SortFunc(out, func(a, b TraceSummary) int { return b.Start.Add(b.Duration).Compare(a.Start.Add(a.Duration)) })
	return out
}

// Trace returns the spans of one trace in waterfall order (each span after
// its parent, siblings by start time), and false when the trace is not
// kept.
func (v *Viewer) Trace(traceID string) ([]SpanRecord, bool) {
	id, err := trace.TraceIDFromHex(traceID)
	if err != nil {
		return nil, false
	}
	v.mu.Lock()
	t, ok := v.mu.traces[id]
	var spans []SpanRecord
	if ok {
		spans = slices.Clone(t.spans)
	}
	v.mu.Unlock()
	if !ok {
		return nil, false
	}
	return waterfall(spans), true
}

func summarize(id trace.TraceID, spans []SpanRecord, dropped int) TraceSummary {
	s := TraceSummary{TraceID: id.String(), Spans: len(spans), Dropped: dropped}
	ids := make(map[string]bool, len(spans))
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var end time.Time
	for i, sp := range spans {
		if i == 0 || sp.Start.Before(s.Start) {
			s.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if sp.Error != "" {
			s.Errors++
		}
		switch {
		case sp.ParentID == "":
			s.Root, s.Service = sp.Name, sp.Service
		case !ids[sp.ParentID]:
			s.Orphans++
		}
	}
	s.Duration = end.Sub(s.Start)
	return s
}

// waterfall orders spans depth first from the roots (and orphans), children
// by start time.
func waterfall(spans []SpanRecord) []SpanRecord {
	byStart := slices.Clone(spans)
	slices.SortStableFunc(byStart, func(a, b SpanRecord) int { return a.Start.Compare(b.Start) })
	present := make(map[string]bool, len(spans))
	children := make(map[string][]SpanRecord, len(spans))
	for _, s := range byStart {
		present[s.SpanID] = true
	}
	var roots []SpanRecord
	for _, s := range byStart {
		if s.ParentID == "" || !present[s.ParentID] {
			roots = append(roots, s)
			continue
		}
		children[s.ParentID] = append(children[s.ParentID], s)
	}
	out := make([]SpanRecord, 0, len(spans))
	var walk func(s SpanRecord)
	walk = func(s SpanRecord) {
		out = append(out, s)
		for _, c := range children[s.SpanID] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

func record(s sdktrace.ReadOnlySpan) SpanRecord {
	r := SpanRecord{
		TraceID: s.SpanContext().TraceID().String(),
		SpanID:  s.SpanContext().SpanID().String(),
		Name:    s.Name(),
		Kind:    s.SpanKind().String(),
		Start:   s.StartTime(),
		End:     s.EndTime(),
	}
	if p := s.Parent(); p.IsValid() {
		r.ParentID = p.SpanID().String()
	}
	if st := s.Status(); st.Code == codes.Error {
		r.Error = st.Description
		if r.Error == "" {
			r.Error = "error"
		}
	}
	if res := s.Resource(); res != nil {
		if v, ok := res.Set().Value("service.name"); ok {
			r.Service = v.Emit()
		}
	}
	if attrs := s.Attributes(); len(attrs) > 0 {
		r.Attributes = make(map[string]string, len(attrs))
		for _, kv := range attrs {
			r.Attributes[string(kv.Key)] = clip(kv.Value.Emit())
		}
	}
	for _, e := range s.Events() {
		er := EventRecord{Name: e.Name, Time: e.Time}
		if len(e.Attributes) > 0 {
			er.Attributes = make(map[string]string, len(e.Attributes))
			for _, kv := range e.Attributes {
				er.Attributes[string(kv.Key)] = clip(kv.Value.Emit())
			}
		}
		r.Events = append(r.Events, er)
	}
	for _, l := range s.Links() {
		r.Links = append(r.Links, l.SpanContext.TraceID().String()+"/"+l.SpanContext.SpanID().String())
	}
	return r
}

func clip(s string) string {
	if len(s) > maxViewerAttrValueLen {
		return s[:maxViewerAttrValueLen] + "…"
	}
	return s
}

var _ sdktrace.SpanProcessor = (*Viewer)(nil)
