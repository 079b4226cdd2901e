package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/telemetry"
)

func TestViewerOptionsRejectNegative(t *testing.T) {
	for _, opts := range []telemetry.ViewerOptions{{Traces: -1}, {Spans: -5}, {SpansPerTrace: -1}} {
		if _, err := telemetry.NewViewer(&opts); err == nil || !strings.Contains(err.Error(), "must be 0") {
			t.Errorf("NewViewer(%+v) = %v, want an error saying it must be 0 or more", opts, err)
		}
	}
}

// TestViewerBounds: the store keeps the newest traces within its trace,
// span and per-trace bounds.
func TestViewerBounds(t *testing.T) {
	tel := setup(t, &telemetry.TracingOptions{Viewer: telemetry.ViewerOptions{Traces: 3, Spans: 10, SpansPerTrace: 4}})
	tr := tel.Tracer("test")
	for i := range 5 { // five traces of one root and two children
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("root-%d", i))
		for j := range 2 {
			_, c := tr.Start(ctx, fmt.Sprintf("child-%d", j))
			c.End()
		}
		root.End()
	}
	ctx, big := tr.Start(context.Background(), "big")
	for range 6 {
		_, c := tr.Start(ctx, "many")
		c.End()
	}
	big.End()

	var got []string
	for _, s := range tel.Viewer.Traces() {
		got = append(got, fmt.Sprintf("%s spans=%d dropped=%d orphans=%d", s.Root, s.Spans, s.Dropped, s.Orphans))
	}
	// "big" ended its 4th span before its root: 6 children, 4 kept, the rest
	// and the root dropped, so its children are orphans.
	want := []string{
		" spans=4 dropped=3 orphans=4",
		"root-4 spans=3 dropped=0 orphans=0",
		"root-3 spans=3 dropped=0 orphans=0", // 4+3+3 spans: at the bound of 10
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kept traces (-want +got):\n%s", diff)
	}
}

func TestViewerHTTP(t *testing.T) {
	tel := setup(t, nil)
	ctx, root := tel.Tracer("test").Start(context.Background(), "checkout <script>")
	telemetry.AddEvent(ctx, "retry", "attempt", "2", "reason", "503")
	_, child := tel.Tracer("test").Start(ctx, "breaker")
	child.End()
	root.End()
	id := root.SpanContext().TraceID().String()

	mux := http.NewServeMux()
	mux.Handle("/traces/", http.StripPrefix("/traces", tel.Viewer))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		path, accept string
		code         int
		contains     []string
	}{
		{"/traces/", "", 200, []string{"Recent traces", `href="` + id + `"`, "checkout &lt;script&gt;"}},
		{"/traces/" + id, "", 200, []string{"checkout &lt;script&gt;", "breaker", "retry", "attempt=2", "2 spans"}},
		{"/traces/" + id + "?format=json", "", 200, []string{`"name": "breaker"`, `"parent_id"`}},
		{"/traces/", "application/json", 200, []string{`"trace_id": "` + id + `"`, `"orphans": 0`}},
		{"/traces/0123456789abcdef0123456789abcdef", "", 404, []string{"is not kept"}},
		{"/traces/nothex", "", 404, []string{"is not kept"}},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		for _, s := range tc.contains {
			if !strings.Contains(string(body), s) {
				t.Errorf("GET %s: body lacks %q:\n%s", tc.path, s, body)
			}
		}
		if strings.Contains(string(body), "<script>") {
			t.Errorf("GET %s: span name not escaped", tc.path)
		}
	}

	resp, err := http.Post(srv.URL+"/traces/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", resp.StatusCode)
	}

	resp, err = http.Get(srv.URL + "/traces/" + id + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spans []telemetry.SpanRecord
	if err := json.NewDecoder(resp.Body).Decode(&spans); err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || spans[0].Name != "checkout <script>" || spans[1].ParentID != spans[0].SpanID {
		t.Errorf("JSON spans = %+v, want root then its child", spans)
	}
}
