package httpcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

// FuzzRoundTrip stores whatever response header the fuzzer makes up and
// asks again: the cache must not panic, must never serve a response it may
// not store, and a hit must be the stored body. The seed corpus is in
// testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Add(200, "max-age=60", "", "", "", `"e"`, "")
	f.Fuzz(func(t *testing.T, status int, cacheControl, vary, expires, age, etag, reqCacheControl string) {
		if status < 200 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			for k, v := range map[string]string{"Cache-Control": cacheControl, "Vary": vary, "Expires": expires, "Age": age, "Etag": etag} {
				if v != "" {
					w.Header().Set(k, v)
				}
			}
			if r.Header.Get("If-None-Match") != "" && r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.WriteHeader(status)
			io.WriteString(w, "body"+strconv.Itoa(n))
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		var bodies []string
		var statuses []string
		for range 2 {
			req := httptest.NewRequest("GET", "http://svc.test/f", nil)
			if reqCacheControl != "" {
				req.Header.Set("Cache-Control", reqCacheControl)
			}
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies = append(bodies, string(b))
			statuses = append(statuses, resp.Header.Get("X-Fjord-Cache"))
		}
		cc := httpcache.ParseCacheControl(cacheControl)
		rcc := httpcache.ParseCacheControl(reqCacheControl)
		varyAll := false
		for name := range strings.SplitSeq(vary, ",") {
			varyAll = varyAll || strings.TrimSpace(name) == "*"
		}
		unstorable := cc.NoStore || rcc.NoStore || varyAll || status >= 500
		if unstorable && statuses[1] != "miss" && statuses[1] != "bypass" {
			t.Errorf("second answer %q for an unstorable response (status %d, %q, Vary %q)", statuses[1], status, cacheControl, vary)
		}
		if (statuses[1] == "hit" || statuses[1] == "revalidated") && bodies[1] != bodies[0] {
			t.Errorf("%s body %q, want the stored %q", statuses[1], bodies[1], bodies[0])
		}
		if statuses[1] == "hit" && o.count() != 1 {
			t.Errorf("a hit made an upstream request")
		}
	})
}
