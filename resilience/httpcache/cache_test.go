package httpcache_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// origin is an in-memory upstream: a RoundTripper that runs a handler
// function, counts the requests and keeps their headers. It opens no
// sockets, so it runs inside synctest bubbles.
type origin struct {
	mu      sync.Mutex
	calls   int
	headers []http.Header
	// handle writes the n-th response (n from 1).
	handle func(w http.ResponseWriter, r *http.Request, n int)
	// fail, when set, fails the n-th request with its error instead.
	fail func(n int) error
}

func (o *origin) RoundTrip(req *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.calls++
	n := o.calls
	o.headers = append(o.headers, req.Header.Clone())
	o.mu.Unlock()
	if o.fail != nil {
		if err := o.fail(n); err != nil {
			return nil, err
		}
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	o.handle(rec, req, n)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp, nil
}

func (o *origin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

func (o *origin) lastHeader() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.headers[len(o.headers)-1]
}

// result is what a test compares after each request.
type result struct {
	Code   int
	Status string // the X-Fjord-Cache header
	Body   string
	Calls  int // upstream requests so far
	Err    string
}

func do(t *testing.T, c http.RoundTripper, o *origin, method, url string, h http.Header) result {
	t.Helper()
	req := httptest.NewRequest(method, url, nil)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.RoundTrip(req)
	synctest.Wait() // let background refreshes finish
	if err != nil {
		return result{Err: err.Error(), Calls: o.count()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return result{Code: resp.StatusCode, Status: resp.Header.Get("X-Fjord-Cache"), Body: string(b), Calls: o.count()}
}

// step is one request of a scenario, after sleeping (in the bubble's fake
// clock) for wait.
type step struct {
	wait   time.Duration
	method string
	header http.Header
	want   result
}

// scenario runs steps against a fresh cache and origin in a synctest bubble.
func scenario(t *testing.T, opts *httpcache.Options, handle func(w http.ResponseWriter, r *http.Request, n int), fail func(n int) error, steps []step) *origin {
	t.Helper()
	o := &origin{handle: handle, fail: fail}
	synctest.Test(t, func(t *testing.T) {
		c := httpcache.New(o, opts)
		defer c.Close()
		for i, s := range steps {
			time.Sleep(s.wait)
			method := s.method
			if method == "" {
				method = http.MethodGet
			}
			got := do(t, c, o, method, "http://svc.test/items/1", s.header)
			if diff := cmp.Diff(s.want, got); diff != "" {
				t.Errorf("step %d (%s after %v): (-want +got)\n%s", i, method, s.wait, diff)
			}
		}
	})
	return o
}

// versioned answers with the given Cache-Control and a body naming the
// request number.
func versioned(cacheControl string, extra ...string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", cacheControl)
		for i := 0; i+1 < len(extra); i += 2 {
			w.Header().Set(extra[i], extra[i+1])
		}
		io.WriteString(w, "v"+strconv.Itoa(n))
	}
}

func TestFreshness(t *testing.T) {
	hit := func(body string, calls int) result { return result{Code: 200, Status: "hit", Body: body, Calls: calls} }
	miss := func(body string, calls int) result {
		return result{Code: 200, Status: "miss", Body: body, Calls: calls}
	}
	past := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	tests := []struct {
		name   string
		opts   *httpcache.Options
		handle func(http.ResponseWriter, *http.Request, int)
		steps  []step
	}{
		{"max-age expiry", nil, versioned("max-age=60"), []step{
			{want: miss("v1", 1)},
			{wait: 59 * time.Second, want: hit("v1", 1)},
			{wait: time.Second, want: miss("v2", 2)},
			{wait: 30 * time.Second, want: hit("v2", 2)},
		}},
		{"s-maxage is ignored by a private cache", nil, versioned("max-age=10, s-maxage=100"), []step{
			{want: miss("v1", 1)},
			{wait: 10 * time.Second, want: miss("v2", 2)},
		}},
		{"private is stored", nil, versioned("private, max-age=10"), []step{
			{want: miss("v1", 1)},
			{wait: 5 * time.Second, want: hit("v1", 1)},
		}},
		{"no-store", nil, versioned("no-store, max-age=60"), []step{
			{want: miss("v1", 1)},
			{want: miss("v2", 2)},
		}},
		{"Expires", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Expires", time.Now().Add(20*time.Second).UTC().Format(http.TimeFormat))
			io.WriteString(w, "v"+strconv.Itoa(n))
		}, []step{
			{want: miss("v1", 1)},
			{wait: 19 * time.Second, want: hit("v1", 1)},
			{wait: time.Second, want: miss("v2", 2)},
		}},
		{"invalid Expires is expired", nil, versioned("", "Expires", "0"), []step{
			{want: miss("v1", 1)},
			{want: miss("v2", 2)},
		}},
		{"max-age wins over Expires", nil, versioned("max-age=5", "Expires", past), []step{
			{want: miss("v1", 1)},
			{wait: 4 * time.Second, want: hit("v1", 1)},
		}},
		{"upstream Age counts", nil, versioned("max-age=60", "Age", "50"), []step{
			{want: miss("v1", 1)},
			{wait: 9 * time.Second, want: hit("v1", 1)},
			{wait: time.Second, want: miss("v2", 2)},
		}},
		{"heuristic freshness off by default", nil, versioned("", "Last-Modified", past), []step{
			{want: miss("v1", 1)},
			{wait: time.Second, want: miss("v2", 2)},
		}},
		{"heuristic freshness on", &httpcache.Options{Heuristic: 0.1}, versioned("", "Last-Modified", past), []step{
			{want: miss("v1", 1)},
			{wait: time.Hour, want: hit("v1", 1)},
		}},
		{"request no-cache revalidates", nil, versioned("max-age=60"), []step{
			{want: miss("v1", 1)},
			{header: http.Header{"Cache-Control": {"no-cache"}}, want: miss("v2", 2)},
			{want: hit("v2", 2)},
		}},
		{"request max-age", nil, versioned("max-age=60"), []step{
			{want: miss("v1", 1)},
			{wait: 20 * time.Second, header: http.Header{"Cache-Control": {"max-age=10"}}, want: miss("v2", 2)},
		}},
		{"request min-fresh", nil, versioned("max-age=60"), []step{
			{want: miss("v1", 1)},
			{wait: 20 * time.Second, header: http.Header{"Cache-Control": {"min-fresh=30"}}, want: hit("v1", 1)},
			{wait: 20 * time.Second, header: http.Header{"Cache-Control": {"min-fresh=30"}}, want: miss("v2", 2)},
		}},
		{"request max-stale", nil, versioned("max-age=10"), []step{
			{want: miss("v1", 1)},
			{wait: 15 * time.Second, header: http.Header{"Cache-Control": {"max-stale=10"}}, want: result{Code: 200, Status: "stale", Body: "v1", Calls: 1}},
			{header: http.Header{"Cache-Control": {"max-stale=1"}}, want: miss("v2", 2)},
		}},
		{"only-if-cached", nil, versioned("max-age=10"), []step{
			{header: http.Header{"Cache-Control": {"only-if-cached"}}, want: result{Code: 504, Status: "miss", Calls: 0}},
			{want: miss("v1", 1)},
			{header: http.Header{"Cache-Control": {"only-if-cached"}}, want: hit("v1", 1)},
		}},
		{"request no-store passes through", nil, versioned("max-age=10"), []step{
			{header: http.Header{"Cache-Control": {"no-store"}}, want: result{Code: 200, Status: "bypass", Body: "v1", Calls: 1}},
			{want: miss("v2", 2)},
		}},
		{"caller's own conditionals pass through", nil, versioned("max-age=10"), []step{
			{want: miss("v1", 1)},
			{header: http.Header{"If-None-Match": {`"x"`}}, want: result{Code: 200, Status: "bypass", Body: "v2", Calls: 2}},
		}},
		{"negative entries off", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "gone"+strconv.Itoa(n), http.StatusNotFound)
		}, []step{
			{want: result{Code: 404, Status: "miss", Body: "gone1\n", Calls: 1}},
			{want: result{Code: 404, Status: "miss", Body: "gone2\n", Calls: 2}},
		}},
		{"negative entries", &httpcache.Options{NegativeTTL: 30 * time.Second}, func(w http.ResponseWriter, r *http.Request, n int) {
			http.Error(w, "gone"+strconv.Itoa(n), http.StatusNotFound)
		}, []step{
			{want: result{Code: 404, Status: "miss", Body: "gone1\n", Calls: 1}},
			{wait: 29 * time.Second, want: result{Code: 404, Status: "hit", Body: "gone1\n", Calls: 1}},
			{wait: time.Second, want: result{Code: 404, Status: "miss", Body: "gone2\n", Calls: 2}},
		}},
		{"server errors are never stored", nil, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=60")
			http.Error(w, "boom"+strconv.Itoa(n), http.StatusInternalServerError)
		}, []step{
			{want: result{Code: 500, Status: "miss", Body: "boom1\n", Calls: 1}},
			{want: result{Code: 500, Status: "miss", Body: "boom2\n", Calls: 2}},
		}},
		{"HEAD from a stored GET", nil, versioned("max-age=60"), []step{
			{method: "HEAD", want: result{Code: 200, Status: "bypass", Calls: 1}},
			{want: miss("v2", 2)},
			{method: "HEAD", want: result{Code: 200, Status: "hit", Calls: 2}},
		}},
		{"unsafe methods invalidate", nil, versioned("max-age=60"), []step{
			{want: miss("v1", 1)},
			{method: "POST", want: result{Code: 200, Status: "bypass", Body: "v2", Calls: 2}},
			{want: miss("v3", 3)},
			{want: hit("v3", 3)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { scenario(t, tt.opts, tt.handle, nil, tt.steps) })
	}
}

func TestFailedUnsafeRequestKeepsEntry(t *testing.T) {
	scenario(t, nil, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPost {
			http.Error(w, "no", http.StatusConflict)
			return
		}
		versioned("max-age=60")(w, r, n)
	}, nil, []step{
		{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
		{method: "POST", want: result{Code: 409, Status: "bypass", Body: "no\n", Calls: 2}},
		{want: result{Code: 200, Status: "hit", Body: "v1", Calls: 2}},
	})
}

func TestInvalidationOfLocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodPut {
				w.Header().Set("Content-Location", "/items/2")
				w.Header().Set("Location", "http://elsewhere.test/items/1")
				return
			}
			versioned("max-age=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		do(t, c, o, "GET", "http://svc.test/items/2", nil)
		do(t, c, o, "PUT", "http://svc.test/items/9", nil)
		got := do(t, c, o, "GET", "http://svc.test/items/2", nil)
		if diff := cmp.Diff(result{Code: 200, Status: "miss", Body: "v3", Calls: 3}, got); diff != "" {
			t.Errorf("GET after PUT with Content-Location (-want +got)\n%s", diff)
		}
	})
}

func TestRevalidation(t *testing.T) {
	lastMod := time.Date(1999, 6, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	tests := []struct {
		name      string
		validator string // header name
		value     string
		condition string // request header the cache must send
	}{
		{"ETag", "Etag", `"abc"`, "If-None-Match"},
		{"Last-Modified", "Last-Modified", lastMod, "If-Modified-Since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o *origin
			o = scenario(t, nil, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set(tt.validator, tt.value)
				w.Header().Set("Cache-Control", "max-age=10")
				w.Header().Set("X-Version", strconv.Itoa(n))
				if r.Header.Get(tt.condition) == tt.value {
					w.Header().Set("Content-Length", "999") // must not replace the stored one
					w.WriteHeader(http.StatusNotModified)
					return
				}
				io.WriteString(w, "body")
			}, nil, []step{
				{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
				{wait: 10 * time.Second, want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
				{wait: 9 * time.Second, want: result{Code: 200, Status: "hit", Body: "body", Calls: 2}},
			})
			if got := o.lastHeader().Get(tt.condition); got != tt.value {
				t.Errorf("revalidation sent %s %q, want %q", tt.condition, got, tt.value)
			}
		})
	}
}

func TestRevalidationMergesHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Etag", `"v"`)
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("X-Version", strconv.Itoa(n))
			if r.Header.Get("If-None-Match") != "" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		do(t, c, o, "GET", "http://svc.test/a", nil)
		time.Sleep(11 * time.Second)
		resp, err := c.RoundTrip(httptest.NewRequest("GET", "http://svc.test/a", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := map[string]string{}
		for _, k := range []string{"X-Version", "Content-Type", "Content-Length", "Age", "X-Fjord-Cache"} {
			got[k] = resp.Header.Get(k)
		}
		want := map[string]string{"X-Version": "2", "Content-Type": "text/plain", "Content-Length": "", "Age": "0", "X-Fjord-Cache": "revalidated"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("headers after a 304 (-want +got)\n%s", diff)
		}
	})
}

func TestNoCacheAndMustRevalidate(t *testing.T) {
	etagged := func(cc string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Etag", `"e"`)
			w.Header().Set("Cache-Control", cc)
			if n > 1 && r.Header.Get("If-None-Match") == `"e"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			io.WriteString(w, "body")
		}
	}
	down := func(n int) error {
		if n >= 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	t.Run("no-cache revalidates every time", func(t *testing.T) {
		scenario(t, nil, etagged("no-cache, max-age=60"), nil, []step{
			{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
			{want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
			{want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 3}},
		})
	})
	t.Run("must-revalidate forbids stale-if-error", func(t *testing.T) {
		scenario(t, nil, etagged("must-revalidate, max-age=10, stale-if-error=600"), down, []step{
			{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
			{wait: 11 * time.Second, want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
			{wait: 11 * time.Second, want: result{Err: "connection refused", Calls: 3}},
		})
	})
	t.Run("must-revalidate forbids stale-while-revalidate", func(t *testing.T) {
		scenario(t, nil, etagged("must-revalidate, max-age=10, stale-while-revalidate=600"), nil, []step{
			{want: result{Code: 200, Status: "miss", Body: "body", Calls: 1}},
			{wait: 11 * time.Second, want: result{Code: 200, Status: "revalidated", Body: "body", Calls: 2}},
		})
	})
}

func TestStaleWhileRevalidate(t *testing.T) {
	scenario(t, nil, versioned("max-age=10, stale-while-revalidate=20"), nil, []step{
		{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
		// Stale within the window: served at once, refreshed in the background.
		{wait: 15 * time.Second, want: result{Code: 200, Status: "stale", Body: "v1", Calls: 2}},
		{want: result{Code: 200, Status: "hit", Body: "v2", Calls: 2}},
		// The refreshed copy is fresh for 10 s, then in its window until 30 s.
		{wait: 29 * time.Second, want: result{Code: 200, Status: "stale", Body: "v2", Calls: 3}},
		// Past the window: a synchronous miss.
		{wait: 31 * time.Second, want: result{Code: 200, Status: "miss", Body: "v4", Calls: 4}},
	})
}

func TestStaleIfError(t *testing.T) {
	failing := func(from int, err error, code int) (func(http.ResponseWriter, *http.Request, int), func(int) error) {
		handle := func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
			if n >= from {
				http.Error(w, "down", code)
				return
			}
			io.WriteString(w, "v"+strconv.Itoa(n))
		}
		fail := func(n int) error {
			if n >= from && err != nil {
				return err
			}
			return nil
		}
		return handle, fail
	}
	t.Run("503", func(t *testing.T) {
		h, f := failing(2, nil, http.StatusServiceUnavailable)
		scenario(t, nil, h, f, []step{
			{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
			{wait: 20 * time.Second, want: result{Code: 200, Status: "stale-if-error", Body: "v1", Calls: 2}},
			{wait: 50 * time.Second, want: result{Code: 200, Status: "stale-if-error", Body: "v1", Calls: 3}},
			{wait: time.Second, want: result{Code: 503, Status: "miss", Body: "down\n", Calls: 4}},
		})
	})
	t.Run("transport error", func(t *testing.T) {
		h, f := failing(2, errors.New("dial tcp: connection refused"), 0)
		scenario(t, nil, h, f, []step{
			{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
			{wait: 70 * time.Second, want: result{Code: 200, Status: "stale-if-error", Body: "v1", Calls: 2}},
			{wait: time.Second, want: result{Err: "dial tcp: connection refused", Calls: 3}},
		})
	})
	t.Run("404 is not an error", func(t *testing.T) {
		h, f := failing(2, nil, http.StatusNotFound)
		scenario(t, nil, h, f, []step{
			{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
			{wait: 20 * time.Second, want: result{Code: 404, Status: "miss", Body: "down\n", Calls: 2}},
		})
	})
	t.Run("Options.StaleIfError", func(t *testing.T) {
		h, f := func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=10")
			if n > 1 {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			io.WriteString(w, "v1")
		}, func(int) error { return nil }
		scenario(t, &httpcache.Options{StaleIfError: time.Minute}, h, f, []step{
			{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
			{wait: 70 * time.Second, want: result{Code: 200, Status: "stale-if-error", Body: "v1", Calls: 2}},
			{wait: time.Second, want: result{Code: 502, Status: "miss", Body: "down\n", Calls: 3}},
		})
	})
}

func TestVary(t *testing.T) {
	handle := func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, r.Header.Get("Accept-Language")+strconv.Itoa(n))
	}
	en := http.Header{"Accept-Language": {"en"}}
	de := http.Header{"Accept-Language": {"de"}}
	scenario(t, nil, handle, nil, []step{
		{header: en, want: result{Code: 200, Status: "miss", Body: "en1", Calls: 1}},
		{header: de, want: result{Code: 200, Status: "miss", Body: "de2", Calls: 2}},
		{header: en, want: result{Code: 200, Status: "hit", Body: "en1", Calls: 2}},
		{header: de, want: result{Code: 200, Status: "hit", Body: "de2", Calls: 2}},
		{want: result{Code: 200, Status: "miss", Body: "3", Calls: 3}},
	})
	scenario(t, nil, versioned("max-age=60", "Vary", "*"), nil, []step{
		{want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
		{want: result{Code: 200, Status: "miss", Body: "v2", Calls: 2}},
	})
}

func TestAuthorization(t *testing.T) {
	alice := http.Header{"Authorization": {"Bearer alice"}}
	bob := http.Header{"Authorization": {"Bearer bob"}}
	carol := http.Header{"Cookie": {"session=carol"}}
	scenario(t, nil, versioned("max-age=60"), nil, []step{
		{header: alice, want: result{Code: 200, Status: "miss", Body: "v1", Calls: 1}},
		{header: bob, want: result{Code: 200, Status: "miss", Body: "v2", Calls: 2}},
		{want: result{Code: 200, Status: "miss", Body: "v3", Calls: 3}},
		{header: carol, want: result{Code: 200, Status: "miss", Body: "v4", Calls: 4}},
		{header: alice, want: result{Code: 200, Status: "hit", Body: "v1", Calls: 4}},
		{header: bob, want: result{Code: 200, Status: "hit", Body: "v2", Calls: 4}},
		{want: result{Code: 200, Status: "hit", Body: "v3", Calls: 4}},
		{header: carol, want: result{Code: 200, Status: "hit", Body: "v4", Calls: 4}},
	})
}

func TestStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=10")
			if r.URL.Path == "/strict" {
				w.Header().Set("Cache-Control", "max-age=10, must-revalidate")
			}
			io.WriteString(w, "v"+strconv.Itoa(n))
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		do(t, c, o, "GET", "http://svc.test/a", nil)
		do(t, c, o, "GET", "http://svc.test/strict", nil)
		time.Sleep(5 * time.Minute)
		type got struct {
			OK           bool
			Body, Status string
			Age          string
		}
		stale := func(path string, maxAge time.Duration) got {
			resp, ok := c.Stale(httptest.NewRequest("GET", "http://svc.test"+path, nil), maxAge)
			if !ok {
				return got{}
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return got{true, string(b), resp.Header.Get("X-Fjord-Cache"), resp.Header.Get("Age")}
		}
		if diff := cmp.Diff(got{true, "v1", "fallback", "300"}, stale("/a", 5*time.Minute)); diff != "" {
			t.Errorf("Stale within maxAge (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(got{}, stale("/a", 5*time.Minute-time.Second)); diff != "" {
			t.Errorf("Stale beyond maxAge (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(got{}, stale("/strict", time.Hour)); diff != "" {
			t.Errorf("Stale of a must-revalidate response (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(got{}, stale("/unknown", time.Hour)); diff != "" {
			t.Errorf("Stale of nothing stored (-want +got)\n%s", diff)
		}
		fallback := c.Fallback(time.Hour)
		down := errors.New("breaker open")
		if resp, err := fallback(httptest.NewRequest("GET", "http://svc.test/a", nil), down); err != nil || resp.StatusCode != 200 {
			t.Errorf("Fallback with a stored copy = %v, %v; want the copy", resp, err)
		} else {
			resp.Body.Close()
		}
		if _, err := fallback(httptest.NewRequest("GET", "http://svc.test/b", nil), down); !errors.Is(err, down) {
			t.Errorf("Fallback without a copy returned %v, want %v", err, down)
		}
		if got := o.count(); got != 2 {
			t.Errorf("Stale and Fallback made upstream requests: %d calls, want 2", got)
		}
	})
}

func TestHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var statuses []httpcache.Status
		var refreshes []httpcache.RefreshInfo
		o := &origin{handle: versioned("max-age=10, stale-while-revalidate=10", "Etag", `"x"`)}
		c := httpcache.New(o, &httpcache.Options{StatusHeader: "-", Hooks: httpcache.Hooks{
			OnRequest: func(ri httpcache.RequestInfo) {
				mu.Lock()
				defer mu.Unlock()
				statuses = append(statuses, ri.Status)
			},
			OnRefresh: func(ri httpcache.RefreshInfo) {
				mu.Lock()
				defer mu.Unlock()
				ri.Duration = 0
				refreshes = append(refreshes, ri)
			},
		}})
		defer c.Close()
		for _, wait := range []time.Duration{0, 5 * time.Second, 10 * time.Second} {
			time.Sleep(wait)
			if got := do(t, c, o, "GET", "http://svc.test/h", nil); got.Status != "" {
				t.Errorf("StatusHeader %q: response carries X-Fjord-Cache %q", "-", got.Status)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]httpcache.Status{"miss", "hit", "stale"}, statuses); diff != "" {
			t.Errorf("OnRequest statuses (-want +got)\n%s", diff)
		}
		want := []httpcache.RefreshInfo{
			{Key: "http://svc.test/h", StatusCode: 200, Stored: true},
			{Key: "http://svc.test/h", Background: true, Conditional: true, StatusCode: 200, Stored: true},
		}
		if diff := cmp.Diff(want, refreshes); diff != "" {
			t.Errorf("OnRefresh (-want +got)\n%s", diff)
		}
	})
}
