package httpcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fjord-data/fjord/resilience"
)

// DefaultStatusHeader is the response header that carries the cache status
// unless Options.StatusHeader says otherwise.
const DefaultStatusHeader = "X-Fjord-Cache"

// Status says how the cache produced a response; it is the value of the
// status header and of RequestInfo.Status.
type Status string

// The statuses, as the status header carries them.
const (
	StatusHit          Status = "hit"            // fresh stored response
	StatusMiss         Status = "miss"           // fetched from upstream (and stored if cacheable)
	StatusStale        Status = "stale"          // stale, within stale-while-revalidate or the request's max-stale
	StatusRevalidated  Status = "revalidated"    // stored response confirmed by a 304
	StatusStaleIfError Status = "stale-if-error" // stale, served because upstream failed
	StatusCoalesced    Status = "coalesced"      // shared the upstream response of a concurrent request
	StatusBypass       Status = "bypass"         // not cacheable: passed through to upstream
	StatusFallback     Status = "fallback"       // returned by Stale or Fallback
)

// Options configure a Cache. The zero value works.
type Options struct {
	// Store keeps the entries; nil means NewLRU(LRUOptions{}). A Store
	// serves one Cache.
	Store Store
	// MaxEntryBytes bounds the body of a response the cache stores or
	// shares between coalesced callers; default 1 MiB. Larger responses
	// are passed through to the caller that asked first and fetched again
	// for the others.
	MaxEntryBytes int64
	// MaxVariants bounds the stored variants (Vary, credentials) per URL;
	// default 8. The oldest is dropped first.
	MaxVariants int
	// RefreshTimeout bounds each upstream request the cache makes (misses,
	// revalidations, background refreshes). They run on a context detached
	// from the caller's cancellation (values such as the trace context are
	// kept), so that one caller giving up does not fail the others who
	// wait for the same response. Default 30 s.
	RefreshTimeout time.Duration
	// NegativeTTL is the freshness lifetime of 404 and 410 responses that
	// carry no explicit freshness (negative entries); with 0 such responses
	// are never served from the cache without revalidation.
	NegativeTTL time.Duration
	// Heuristic is the fraction of (Date − Last-Modified) used as the
	// freshness lifetime of responses without explicit freshness (RFC 9111
	// section 4.2.2, typically 0.1); 0, the default, turns heuristic
	// freshness off.
	Heuristic float64
	// StaleIfError is a stale-if-error window applied to every stored
	// response in addition to its own directive; 0 means only the
	// directives count.
	StaleIfError time.Duration
	// StatusHeader names the response header that carries the Status;
	// default DefaultStatusHeader, "-" for none.
	StatusHeader string
	// Hooks observe the cache.
	Hooks Hooks
	// Logger receives diagnostics (failed background refreshes); nil
	// discards them.
	Logger *slog.Logger
}

// Hooks are optional callbacks for telemetry. They must be fast and safe
// for concurrent use.
type Hooks struct {
	// OnRequest runs once for each request the cache answers, with how.
	OnRequest func(RequestInfo)
	// OnRefresh runs after each upstream request the cache makes on its
	// own context (a miss, a revalidation or a background refresh).
	OnRefresh func(RefreshInfo)
}

// RequestInfo describes one request the cache answered.
type RequestInfo struct {
	Method string
	Key    string // the URL the entry is stored under
	Status Status
	Age    time.Duration // age of the stored response served; 0 for misses
	Err    error         // the error returned, if any
}

// RefreshInfo describes an upstream request made by the cache.
type RefreshInfo struct {
	Key         string
	Background  bool // stale-while-revalidate refresh, nobody waits for it
	Conditional bool // sent with the stored response's validators
	StatusCode  int  // 0 on error
	Revalidated bool // 304: the stored response was kept and freshened
	Stored      bool // the response was stored
	Duration    time.Duration
	Err         error
}

// Cache is a private HTTP cache (RFC 9111, RFC 5861) in front of an
// http.RoundTripper. It is safe for concurrent use.
type Cache struct {
	next         http.RoundTripper
	opts         Options
	store        Store
	statusHeader string
	logger       *slog.Logger

	closeCtx context.Context
	closeFn  context.CancelFunc
	wg       sync.WaitGroup

	mu struct {
		sync.Mutex
		flights map[string]*flight
	}
	storeMu sync.Mutex // serialises read-modify-write of entries
}

// New returns a cache that sends the requests it cannot answer to next
// (http.DefaultTransport when nil). opts may be nil.
func New(next http.RoundTripper, opts *Options) *Cache {
	if next == nil {
		next = http.DefaultTransport
	}
	c := &Cache{next: next}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.MaxEntryBytes <= 0 {
		c.opts.MaxEntryBytes = 1 << 20
	}
	if c.opts.MaxVariants <= 0 {
		c.opts.MaxVariants = 8
	}
	if c.opts.RefreshTimeout <= 0 {
		c.opts.RefreshTimeout = 30 * time.Second
	}
	c.store = c.opts.Store
	if c.store == nil {
		c.store = NewLRU(LRUOptions{})
	}
	switch c.opts.StatusHeader {
	case "":
		c.statusHeader = DefaultStatusHeader
	case "-":
	default:
		c.statusHeader = textproto.CanonicalMIMEHeaderKey(c.opts.StatusHeader)
	}
	c.logger = c.opts.Logger
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.closeCtx, c.closeFn = context.WithCancel(context.Background())
	c.mu.flights = make(map[string]*flight)
	return c
}

// Close cancels the upstream requests the cache runs on its own (misses
// others wait for, background refreshes) and waits for them to end. After
// Close, RoundTrip passes every request to upstream.
func (c *Cache) Close() error {
	c.mu.Lock() // startFlight checks closeCtx and calls wg.Add under mu
	c.closeFn()
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// RoundTrip implements http.RoundTripper. GET requests are answered from
// the cache when RFC 9111 allows, else fetched (coalesced with concurrent
// requests for the same URL and credential) and stored when cacheable.
// HEAD requests are answered from a fresh stored GET response or passed
// through. Unsafe methods are passed through and, on a non-error
// response, invalidate the stored responses of their URL and of the
// response's Location and Content-Location on the same host.
//
// Requests carrying their own validators or a Range, and requests with
// Cache-Control: no-store, are passed through and not stored. A request
// with only-if-cached and nothing usable stored gets a 504.
//
// A panic of upstream during a request the cache makes on its own
// goroutine is re-panicked, with the same value, on the goroutine of every
// caller waiting for that request; a background refresh's panic is logged.
func (c *Cache) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.closeCtx.Err() != nil {
		return c.next.RoundTrip(req)
	}
	switch req.Method {
	case http.MethodGet, "":
		return c.get(req)
	case http.MethodHead:
		return c.head(req)
	case http.MethodOptions, http.MethodTrace:
		return c.bypass(req, "")
	default:
		return c.unsafe(req)
	}
}

func (c *Cache) get(req *http.Request) (*http.Response, error) {
	if hasOwnConditionals(req.Header) {
		return c.bypass(req, "")
	}
	reqCC := ParseCacheControl(req.Header.Values("Cache-Control")...)
	if reqCC.NoStore {
		return c.bypass(req, "")
	}
	key := cacheKey(req.URL)
	var cred credential
	cred.setFrom(req.Header)
	now := time.Now()
	sr := c.lookup(key, req, &cred)
	if sr != nil {
		switch c.decide(sr, reqCC, now) {
		case useFresh:
			return c.serve(req, key, sr, StatusHit, now), nil
		case useStale:
			return c.serve(req, key, sr, StatusStale, now), nil
		case useSWR:
			c.refreshInBackground(req, key, &cred, sr)
			return c.serve(req, key, sr, StatusStale, now), nil
		}
	}
	if reqCC.OnlyIfCached {
		return c.gatewayTimeout(req, key), nil
	}
	return c.fetch(req, key, &cred, sr, reqCC)
}

// hasOwnConditionals reports a request whose caller manages validation or
// ranges itself; the cache stays out of its way.
func hasOwnConditionals(h http.Header) bool {
	for _, k := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

func (c *Cache) head(req *http.Request) (*http.Response, error) {
	reqCC := ParseCacheControl(req.Header.Values("Cache-Control")...)
	if !hasOwnConditionals(req.Header) && !reqCC.NoStore {
		key := cacheKey(req.URL)
		var cred credential
		cred.setFrom(req.Header)
		now := time.Now()
		if sr := c.lookup(key, req, &cred); sr != nil {
			if d := c.decide(sr, reqCC, now); d == useFresh || d == useStale {
				return c.serve(req, key, sr, StatusHit, now), nil
			}
		}
	}
	return c.bypass(req, "")
}

// bypass passes req through to upstream.
func (c *Cache) bypass(req *http.Request, key string) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		c.setStatus(resp.Header, StatusBypass)
	}
	c.report(req, key, StatusBypass, 0, err)
	return resp, err
}

func (c *Cache) unsafe(req *http.Request) (*http.Response, error) {
	resp, err := c.bypass(req, "")
	if err != nil || resp.StatusCode >= 400 {
		return resp, err
	}
	c.invalidate(cacheKey(req.URL))
	for _, field := range [...]string{"Location", "Content-Location"} {
		v := resp.Header.Get(field)
		if v == "" {
			continue
		}
		u, err := req.URL.Parse(v)
		if err != nil || !strings.EqualFold(u.Host, req.URL.Host) || !strings.EqualFold(u.Scheme, req.URL.Scheme) {
			continue
		}
		c.invalidate(cacheKey(u))
	}
	return resp, nil
}

// invalidate deletes key's entry and keeps the upstream requests for it
// that are running from storing what they get: it may predate the change.
func (c *Cache) invalidate(key string) {
	c.mu.Lock()
	for _, fl := range c.mu.flights {
		if fl.key == key {
			fl.invalidated.Store(true)
		}
	}
	c.mu.Unlock()
	c.store.Delete(key)
}

// Stale returns a stored response for req (GET or HEAD) whose current age
// is at most maxAge, fresh or not, as a fallback while upstream is
// unavailable (for example the breaker's fallback). It honours Vary and
// credentials like RoundTrip, and never returns a response marked
// must-revalidate or no-cache. The response carries an Age header and the
// status "fallback". Stale never calls upstream.
func (c *Cache) Stale(req *http.Request, maxAge time.Duration) (*http.Response, bool) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead && req.Method != "" {
		return nil, false
	}
	key := cacheKey(req.URL)
	var cred credential
	cred.setFrom(req.Header)
	sr := c.lookup(key, req, &cred)
	if sr == nil {
		return nil, false
	}
	m := sr.meta()
	now := time.Now()
	if m.cc.MustRevalidate || m.cc.NoCache || sr.currentAge(now) > maxAge {
		return nil, false
	}
	return c.serve(req, key, sr, StatusFallback, now), true
}

// Fallback returns a function for a fallback policy: it answers req with
// Stale(req, maxAge) when there is such a copy, and otherwise returns err
// unchanged.
func (c *Cache) Fallback(maxAge time.Duration) func(req *http.Request, err error) (*http.Response, error) {
	return func(req *http.Request, err error) (*http.Response, error) {
		if resp, ok := c.Stale(req, maxAge); ok {
			return resp, nil
		}
		return nil, err
	}
}

// lookup returns the stored response for req's variant, or nil.
func (c *Cache) lookup(key string, req *http.Request, cred *credential) *StoredResponse {
	e, ok := c.store.Get(key)
	if !ok {
		return nil
	}
	for _, r := range e.Responses {
		if cred.matches(r.Credential) && varyMatches(r.Vary, req.Header) {
			return r
		}
	}
	return nil
}

// serve builds a response from a stored one.
func (c *Cache) serve(req *http.Request, key string, sr *StoredResponse, status Status, now time.Time) *http.Response {
	age := max(0, sr.currentAge(now))
	h := cloneHeader(sr.Header, c.statusHeader, string(status), strconv.FormatInt(int64(age/time.Second), 10))
	resp := &http.Response{
		Status:     sr.meta().statusLine,
		StatusCode: sr.StatusCode,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Request:    req,
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		resp.ContentLength = int64(len(sr.Body))
	} else {
		body := &storedBody{}
		body.Reset(sr.Body)
		resp.Body = body
		resp.ContentLength = int64(len(sr.Body))
	}
	c.report(req, key, status, age, nil)
	return resp
}

// storedBody reads a stored body; one allocation for reader and closer.
type storedBody struct{ bytes.Reader }

func (*storedBody) Close() error { return nil }

// cloneHeader copies h with two allocations and sets Age and, when
// statusHeader is not "", the status header.
func cloneHeader(h http.Header, statusHeader, status, age string) http.Header {
	nv := 2
	for _, vs := range h {
		nv += len(vs)
	}
	values := make([]string, 0, nv)
	out := make(http.Header, len(h)+2)
	for k, vs := range h {
		if k == "Age" || k == statusHeader {
			continue
		}
		n := len(values)
		values = append(values, vs...)
		out[k] = values[n:len(values):len(values)]
	}
	values = append(values, age)
	out["Age"] = values[len(values)-1 : len(values) : len(values)]
	if statusHeader != "" {
		values = append(values, status)
		out[statusHeader] = values[len(values)-1 : len(values) : len(values)]
	}
	return out
}

func (c *Cache) setStatus(h http.Header, s Status) {
	if c.statusHeader != "" && h != nil {
		h[c.statusHeader] = []string{string(s)}
	}
}

func (c *Cache) report(req *http.Request, key string, s Status, age time.Duration, err error) {
	if c.opts.Hooks.OnRequest != nil {
		c.opts.Hooks.OnRequest(RequestInfo{Method: req.Method, Key: key, Status: s, Age: age, Err: err})
	}
}

func (c *Cache) gatewayTimeout(req *http.Request, key string) *http.Response {
	h := http.Header{"Content-Length": {"0"}}
	c.setStatus(h, StatusMiss)
	c.report(req, key, StatusMiss, 0, nil)
	return &http.Response{
		Status: "504 Gateway Timeout", StatusCode: http.StatusGatewayTimeout,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Request: req,
	}
}

// cacheKey is the URL without its fragment, scheme and host lower-cased.
func cacheKey(u *url.URL) string {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery == "" && !u.ForceQuery {
		return lowerASCII(u.Scheme) + "://" + lowerASCII(u.Host) + path
	}
	return lowerASCII(u.Scheme) + "://" + lowerASCII(u.Host) + path + "?" + u.RawQuery
}

// credential is the SHA-256 of a request's Authorization and Cookie
// fields: a client cache shared by a service's calls on behalf of many
// users never serves one user's response to another.
type credential struct {
	hex [64]byte
	ok  bool
}

func (cr *credential) setFrom(h http.Header) {
	auth, cookie := h["Authorization"], h["Cookie"]
	if len(auth) == 0 && len(cookie) == 0 {
		return
	}
	sum := sha256.Sum256([]byte(strings.Join(auth, ", ") + "\x00" + strings.Join(cookie, "; ")))
	hex.Encode(cr.hex[:], sum[:])
	cr.ok = true
}

func (cr *credential) String() string {
	if !cr.ok {
		return ""
	}
	return string(cr.hex[:])
}

func (cr *credential) matches(stored string) bool {
	if !cr.ok {
		return stored == ""
	}
	return string(cr.hex[:]) == stored
}

// varyMatches reports whether a request's header has the values a stored
// response was selected with.
func varyMatches(fields []VaryField, h http.Header) bool {
	for _, f := range fields {
		vs := h[f.Name]
		switch len(vs) {
		case 0:
			if f.Value != "" {
				return false
			}
		case 1:
			if vs[0] != f.Value {
				return false
			}
		default:
			if strings.Join(vs, ", ") != f.Value {
				return false
			}
		}
	}
	return true
}

// varyFields returns the request's values for the fields a response's Vary
// names, and false for Vary: * (never reusable).
func varyFields(respHeader, reqHeader http.Header) ([]VaryField, bool) {
	var fields []VaryField
	for _, line := range respHeader.Values("Vary") {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			switch name {
			case "":
				continue
			case "*":
				return nil, false
			}
			name = textproto.CanonicalMIMEHeaderKey(name)
			fields = append(fields, VaryField{Name: name, Value: strings.Join(reqHeader[name], ", ")})
		}
	}
	return fields, true
}

// FallbackPolicy returns a resilience fallback that answers a failed call
// with Stale(req, maxAge) when there is such a copy ("serve stale while the
// dependency is down"), and otherwise returns the failure unchanged. It is
// for a resilience.Transport in front of the cache, so that the breaker
// sees every call and an open breaker is answered from the cache:
//
//	cache := httpcache.New(http.DefaultTransport, nil)
//	rt, err := resilience.NewTransport(cache, resilience.TransportOptions{},
//		cache.FallbackPolicy(time.Hour), resilience.Retry{MaxAttempts: 3}, breakers)
//
// With the cache in front instead, Options.StaleIfError does the same job.
func (c *Cache) FallbackPolicy(maxAge time.Duration) resilience.Fallback[*http.Response] {
	serve := c.Fallback(maxAge)
	return resilience.Fallback[*http.Response]{Func: func(ctx context.Context, err error) (*http.Response, error) {
		req := resilience.RequestFrom(ctx)
		if req == nil {
			return nil, err
		}
		return serve(req, err)
	}}
}
