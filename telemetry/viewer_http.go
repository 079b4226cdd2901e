package telemetry

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// ServeHTTP serves the viewer, relative to where it is mounted (use
// http.StripPrefix): "/" lists the kept traces, newest first; "/{trace-id}"
// shows one trace as a waterfall, with each span's events (retries, breaker
// decisions, cache status) and attributes. Either answers JSON instead of
// HTML with ?format=json or Accept: application/json.
func (v *Viewer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "telemetry: the trace viewer answers GET only", http.StatusMethodNotAllowed)
		return
	}
	wantJSON := r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
	id := strings.Trim(r.URL.Path, "/")
	if id == "" {
		traces := v.Traces()
		if wantJSON {
			writeJSON(w, traces)
			return
		}
		render(w, listPage, traces)
		return
	}
	spans, ok := v.Trace(id)
	if !ok {
		http.Error(w, "telemetry: trace "+id+" is not kept (unknown, malformed, or evicted)", http.StatusNotFound)
		return
	}
	if wantJSON {
		writeJSON(w, spans)
		return
	}
	render(w, tracePage, waterfallView(id, spans))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = t.Execute(w, data) // the client went away
}

// waterfallRow is one span positioned on the trace's time axis.
type waterfallRow struct {
	SpanRecord
	Depth        int
	Indent       float64 // em, from Depth
	Left, Width  float64 // percent of the trace's duration
	Offset, Took time.Duration
	Orphan       bool
	Marks        []eventMark
}

// eventMark places one span event on the timeline.
type eventMark struct {
	Left  float64
	Label string
}

type waterfallPage struct {
	TraceID string
	Total   time.Duration
	Rows    []waterfallRow
}

func waterfallView(id string, spans []SpanRecord) waterfallPage {
	page := waterfallPage{TraceID: id}
	if len(spans) == 0 {
		return page
	}
	start, end := spans[0].Start, spans[0].End
	depth := make(map[string]int, len(spans))
	for _, s := range spans {
		if s.Start.Before(start) {
			start = s.Start
		}
		if s.End.After(end) {
			end = s.End
		}
	}
	page.Total = end.Sub(start)
	total := float64(page.Total)
	if total <= 0 {
		total = 1
	}
	for _, s := range spans { // waterfall order: parents first
		d, parentKept := depth[s.ParentID]
		if parentKept {
			d++
		}
		depth[s.SpanID] = d
		row := waterfallRow{SpanRecord: s, Depth: d, Offset: s.Start.Sub(start), Took: s.Duration(),
			Orphan: s.ParentID != "" && !parentKept}
		row.Indent = 0.3 + 1.2*float64(d)
		row.Left = 100 * float64(row.Offset) / total
		row.Width = max(100*float64(row.Took)/total, 0.2)
		for _, e := range s.Events {
			row.Marks = append(row.Marks, eventMark{Left: 100 * float64(e.Time.Sub(start)) / total,
				Label: e.Name + " at +" + e.Time.Sub(start).String()})
		}
		page.Rows = append(page.Rows, row)
	}
	return page
}

const pageStyle = `<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:3px 6px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
.bar{position:relative;height:14px;background:#f4f4f4;min-width:300px}
.bar span{position:absolute;top:0;height:14px;background:#4a7fd4;border-radius:2px}
.bar span.err{background:#d44a4a}.bar i{position:absolute;top:-2px;width:2px;height:18px;background:#e6a100}
.err{color:#b00}.muted{color:#777}details{margin:2px 0}code{font-size:12px}
</style>`

var listPage = template.Must(template.New("list").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>Traces</title>` + pageStyle + `</head><body>
<h1>Recent traces</h1>
{{if not .}}<p class="muted">No traces yet.</p>{{else}}
<table><tr><th>trace</th><th>root</th><th>service</th><th>start</th><th>duration</th><th>spans</th><th>errors</th><th>orphans</th></tr>
{{range .}}<tr><td><a href="{{.TraceID}}"><code>{{.TraceID}}</code></a></td><td>{{.Root}}</td><td>{{.Service}}</td>
<td>{{.Start.Format "15:04:05.000"}}</td><td>{{.Duration}}</td><td>{{.Spans}}{{if .Dropped}} (+{{.Dropped}} dropped){{end}}</td>
<td{{if .Errors}} class="err"{{end}}>{{.Errors}}</td><td>{{.Orphans}}</td></tr>
{{end}}</table>{{end}}</body></html>`))

var tracePage = template.Must(template.New("trace").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>Trace {{.TraceID}}</title>` + pageStyle + `</head><body>
<p><a href="./">← all traces</a></p><h1>Trace <code>{{.TraceID}}</code></h1><p>{{len .Rows}} spans over {{.Total}}</p>
<table><tr><th>span</th><th>service</th><th>took</th><th style="width:45%">timeline</th></tr>
{{range .Rows}}<tr><td style="padding-left:{{printf "%.1f" .Indent}}em">{{if .Orphan}}<span class="err" title="parent not in this trace">⚠</span> {{end}}<b>{{.Name}}</b> <span class="muted">{{.Kind}}</span>
{{if .Error}}<div class="err">{{.Error}}</div>{{end}}
{{if or .Events .Attributes}}<details><summary class="muted">{{len .Events}} events, {{len .Attributes}} attributes</summary>
{{range .Events}}<div>• {{.Name}}{{range $k, $v := .Attributes}} <code>{{$k}}={{$v}}</code>{{end}}</div>{{end}}
{{range $k, $v := .Attributes}}<div><code>{{$k}} = {{$v}}</code></div>{{end}}</details>{{end}}</td>
<td>{{.Service}}</td><td>{{.Took}}</td>
<td><div class="bar"><span{{if .Error}} class="err"{{end}} style="left:{{printf "%.2f" .Left}}%;width:{{printf "%.2f" .Width}}%"></span>{{range .Marks}}<i style="left:{{printf "%.2f" .Left}}%" title="{{.Label}}"></i>{{end}}</div></td></tr>
{{end}}</table></body></html>`))
