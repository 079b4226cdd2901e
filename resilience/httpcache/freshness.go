package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// meta is what the cache derives from a stored response's header, once.
type meta struct {
	cc           CacheControl
	date         time.Time // Date, or the response time when absent or invalid
	age          time.Duration
	expires      time.Time
	hasExpires   bool // an Expires field was present (possibly invalid: then expired)
	lastModified time.Time
	etag         string
	lastModRaw   string
	statusLine   string
}

func (r *StoredResponse) meta() *meta {
	if m := r.derived.Load(); m != nil {
		return m
	}
	m := computeMeta(r)
	r.derived.Store(m)
	return m
}

func computeMeta(r *StoredResponse) *meta {
	h := r.Header
	m := &meta{
		cc:         ParseCacheControl(h.Values("Cache-Control")...),
		etag:       h.Get("Etag"),
		lastModRaw: h.Get("Last-Modified"),
		statusLine: strconv.Itoa(r.StatusCode) + " " + http.StatusText(r.StatusCode),
		date:       r.ResponseTime,
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		m.date = d
	}
	if a, ok := parseDelta(strings.TrimSpace(h.Get("Age"))); ok {
		m.age = time.Duration(a) * time.Second
	}
	if vs := h.Values("Expires"); len(vs) > 0 {
		m.hasExpires = true
		if e, err := http.ParseTime(vs[0]); err == nil {
			m.expires = e
		} // else: an invalid Expires ("0") means already expired
	}
	if lm, err := http.ParseTime(m.lastModRaw); err == nil {
		m.lastModified = lm
	}
	return m
}

// currentAge is the response's age at now (RFC 9111 section 4.2.3).
func (r *StoredResponse) currentAge(now time.Time) time.Duration {
	m := r.meta()
	apparent := max(0, r.ResponseTime.Sub(m.date))
	delay := r.ResponseTime.Sub(r.RequestTime)
	corrected := m.age + delay
	initial := max(apparent, corrected)
	return initial + now.Sub(r.ResponseTime)
}

// heuristicallyCacheable are the status codes RFC 9110 section 15.1 lets a
// cache store and reuse without explicit freshness.
func heuristicallyCacheable(code int) bool {
	switch code {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// lifetime is the response's freshness lifetime (RFC 9111 section 4.2.1)
// for a private cache: max-age, else Expires − Date, else the heuristic
// when enabled, else the negative TTL for 404 and 410, else 0.
func (c *Cache) lifetime(r *StoredResponse) time.Duration {
	m := r.meta()
	switch {
	case m.cc.MaxAge.Set:
		return m.cc.MaxAge.Duration()
	case m.hasExpires:
		if m.expires.IsZero() {
			return 0
		}
		return max(0, m.expires.Sub(m.date))
	case c.opts.Heuristic > 0 && heuristicallyCacheable(r.StatusCode) && !m.lastModified.IsZero():
		return time.Duration(float64(max(0, m.date.Sub(m.lastModified))) * c.opts.Heuristic)
	case c.opts.NegativeTTL > 0 && (r.StatusCode == http.StatusNotFound || r.StatusCode == http.StatusGone):
		return c.opts.NegativeTTL
	}
	return 0
}

// explicitFreshness reports whether a response header carries freshness
// information of its own.
func explicitFreshness(cc CacheControl, h http.Header) bool {
	return cc.MaxAge.Set || len(h.Values("Expires")) > 0
}

// decision is what a lookup may do with a stored response.
type decision int

const (
	mustFetch decision = iota // not usable without going upstream
	useFresh                  // serve as a hit
	useStale                  // serve stale (request max-stale)
	useSWR                    // serve stale and revalidate in the background
)

// decide applies RFC 9111 section 4.2 and RFC 5861 to a stored response
// and a request's Cache-Control.
func (c *Cache) decide(r *StoredResponse, req CacheControl, now time.Time) decision {
	m := r.meta()
	age, life := r.currentAge(now), c.lifetime(r)
	if m.cc.NoCache || req.NoCache {
		return mustFetch
	}
	if req.MaxAge.Set && age > req.MaxAge.Duration() {
		return mustFetch
	}
	if age < life {
		if req.MinFresh.Set && life-age < req.MinFresh.Duration() {
			return mustFetch
		}
		return useFresh
	}
	if m.cc.MustRevalidate {
		return mustFetch
	}
	stale := age - life
	if req.MaxStale.Set && stale <= req.MaxStale.Duration() {
		return useStale
	}
	if m.cc.StaleWhileRevalidate.Set && stale <= m.cc.StaleWhileRevalidate.Duration() {
		return useSWR
	}
	return mustFetch
}

// staleIfError reports whether r may be served in place of an error
// (RFC 5861 section 4): within the response's or the request's
// stale-if-error window, or Options.StaleIfError, and never when the
// response says must-revalidate or no-cache.
func (c *Cache) staleIfError(r *StoredResponse, req CacheControl, now time.Time) bool {
	if r == nil {
		return false
	}
	m := r.meta()
	if m.cc.MustRevalidate || m.cc.NoCache {
		return false
	}
	window := c.opts.StaleIfError
	if m.cc.StaleIfError.Set {
		window = max(window, m.cc.StaleIfError.Duration())
	}
	if req.StaleIfError.Set {
		window = max(window, req.StaleIfError.Duration())
	}
	return r.currentAge(now)-c.lifetime(r) <= window
}

// isServerError reports the status codes RFC 5861 counts as errors.
func isServerError(code int) bool {
	switch code {
	case 500, 502, 503, 504:
		return true
	}
	return false
}
