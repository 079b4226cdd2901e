package httpcache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A flight is one upstream request the cache makes on its own context,
// shared by every caller that asks for the same URL and credential while
// it runs (request coalescing). The caller that started it is its leader.
type flight struct {
	key         string      // the entry's key
	invalidated atomic.Bool // an unsafe request to key ran meanwhile: store nothing
	done        chan struct{}

	// Results, written before done is closed.
	res         *StoredResponse // complete response (nil on error or hand-off)
	revalidated bool            // res is the stored response freshened by a 304
	shareable   bool            // res may be served to callers other than the leader
	err         error
	panicked    bool // upstream panicked with pv: every waiter re-panics
	pv          any

	mu struct {
		sync.Mutex
		live       *http.Response // too large to buffer: for the leader only
		leaderGone bool           // the leader stopped waiting (or there is none)
	}
}

// handOff gives resp, whose body is still streaming, to the leader, or
// reports false when the leader is gone.
func (fl *flight) handOff(resp *http.Response) bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.mu.leaderGone {
		return false
	}
	fl.mu.live = resp
	return true
}

// take returns the response handed off to the leader, once.
func (fl *flight) take() *http.Response {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	r := fl.mu.live
	fl.mu.live = nil
	return r
}

// abandon records that the leader stopped waiting.
func (fl *flight) abandon() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.mu.leaderGone = true
	if fl.mu.live != nil {
		fl.mu.live.Body.Close()
		fl.mu.live = nil
	}
}

// fetch answers req from upstream through a (possibly shared) flight. sr is
// the stored response for req's variant, if any: it is revalidated, and
// served when upstream fails within its stale-if-error window.
func (c *Cache) fetch(req *http.Request, key string, cred *credential, sr *StoredResponse, reqCC CacheControl) (*http.Response, error) {
	fl, leader := c.startFlight(req, key, cred, sr, false)
	if fl == nil {
		return c.bypass(req, key)
	}
	ctx := req.Context()
	select {
	case <-fl.done:
	case <-ctx.Done():
		if leader {
			fl.abandon()
		}
		err := ctx.Err()
		c.report(req, key, StatusMiss, 0, err)
		return nil, err
	}
	if fl.panicked {
		panic(fl.pv) // as the upstream's panic would reach a caller without the cache
	}
	now := time.Now()
	if fl.err != nil {
		if c.staleIfError(sr, reqCC, now) {
			return c.serve(req, key, sr, StatusStaleIfError, now), nil
		}
		c.report(req, key, StatusMiss, 0, fl.err)
		return nil, fl.err
	}
	if leader {
		if live := fl.take(); live != nil {
			stop := context.AfterFunc(ctx, live.Body.(*liveBody).cancel)
			live.Body.(*liveBody).stops = append(live.Body.(*liveBody).stops, stop)
			c.setStatus(live.Header, StatusMiss)
			c.report(req, key, StatusMiss, 0, nil)
			return live, nil
		}
	}
	res := fl.res
	if res == nil || (!leader && (!fl.shareable || !varyMatches(res.Vary, req.Header))) {
		return c.bypass(req, key)
	}
	if isServerError(res.StatusCode) && c.staleIfError(sr, reqCC, now) {
		return c.serve(req, key, sr, StatusStaleIfError, now), nil
	}
	status := StatusMiss
	switch {
	case !leader:
		status = StatusCoalesced
	case fl.revalidated:
		status = StatusRevalidated
	}
	return c.serve(req, key, res, status, now), nil
}

// refreshInBackground revalidates sr unless a flight for it already runs.
func (c *Cache) refreshInBackground(req *http.Request, key string, cred *credential, sr *StoredResponse) {
	c.startFlight(req, key, cred, sr, true)
}

// startFlight joins the flight for key and cred, or starts one and reports
// that the caller leads it. It returns nil after Close.
func (c *Cache) startFlight(req *http.Request, key string, cred *credential, sr *StoredResponse, background bool) (*flight, bool) {
	fk := key + "\x00" + cred.String()
	c.mu.Lock()
	if fl, ok := c.mu.flights[fk]; ok {
		c.mu.Unlock()
		return fl, false
	}
	if c.closeCtx.Err() != nil {
		c.mu.Unlock()
		return nil, false
	}
	fl := &flight{key: key, done: make(chan struct{})}
	fl.mu.leaderGone = background
	c.mu.flights[fk] = fl
	c.wg.Add(1)
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), c.opts.RefreshTimeout)
	stop := context.AfterFunc(c.closeCtx, cancel)
	out := req.Clone(ctx)
	credHex := cred.String()
	go func() {
		defer c.wg.Done()
		returned := false
		defer func() {
			if !returned { // upstream panicked: hand the panic to the waiters, never crash here
				fl.panicked, fl.pv = true, recover()
				fl.err = fmt.Errorf("httpcache: upstream panicked: %v", fl.pv)
				c.logger.Error("httpcache: upstream panicked", "key", key, "background", background, "panic", fl.pv)
			}
			c.mu.Lock()
			delete(c.mu.flights, fk)
			c.mu.Unlock()
			close(fl.done)
		}()
		c.runFlight(out, &flightCtx{cancel: cancel, stop: stop}, fl, key, credHex, sr, background)
		returned = true
	}()
	return fl, true
}

// flightCtx ends a flight's context: cancel it and stop watching Close.
type flightCtx struct {
	cancel context.CancelFunc
	stop   func() bool
}

func (f *flightCtx) end() {
	f.stop()
	f.cancel()
}

// runFlight makes the upstream request and records its result in fl.
func (c *Cache) runFlight(out *http.Request, fc *flightCtx, fl *flight, key, cred string, sr *StoredResponse, background bool) {
	handedOff := false
	defer func() {
		if !handedOff {
			fc.end()
		}
	}()
	info := RefreshInfo{Key: key, Background: background}
	start := time.Now()
	defer func() {
		info.Duration = time.Since(start)
		info.Err = fl.err
		if info.Err != nil && background {
			c.logger.Debug("httpcache: background refresh failed", "key", key, "err", info.Err)
		}
		if c.opts.Hooks.OnRefresh != nil {
			c.opts.Hooks.OnRefresh(info)
		}
	}()

	info.Conditional = sr != nil && setValidators(out.Header, sr)
	resp, err := c.next.RoundTrip(out)
	if err != nil {
		fl.err = err
		return
	}
	respTime := time.Now()
	info.StatusCode = resp.StatusCode
	if resp.StatusCode == http.StatusNotModified && info.Conditional {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if updated, ok := merge304(sr, resp.Header, start, respTime); ok {
			fl.res, fl.revalidated, fl.shareable = updated, true, true
			info.Revalidated = true
			if !updated.meta().cc.NoStore && !fl.invalidated.Load() {
				c.put(key, updated, out.Header)
				info.Stored = true
			}
			return
		}
		// The 304 names another representation: fetch it whole.
		clearValidators(out.Header)
		info.Conditional = false
		if resp, err = c.next.RoundTrip(out); err != nil {
			fl.err = err
			return
		}
		respTime = time.Now()
		info.StatusCode = resp.StatusCode
	}

	body, complete, err := readUpTo(resp.Body, resp.ContentLength, c.opts.MaxEntryBytes)
	if err != nil {
		resp.Body.Close()
		fl.err = &BodyError{Key: key, Read: len(body), Err: err}
		return
	}
	if !complete {
		resp.Body = &liveBody{Reader: io.MultiReader(bytes.NewReader(body), resp.Body), body: resp.Body, cancel: fc.end}
		if fl.handOff(resp) {
			handedOff = true
		} else {
			resp.Body.Close()
			handedOff = true // Close ended the context
		}
		return
	}
	resp.Body.Close()
	nsr := &StoredResponse{
		StatusCode:   resp.StatusCode,
		Header:       resp.Header,
		Body:         body,
		RequestTime:  start,
		ResponseTime: respTime,
		Credential:   cred,
	}
	vary, varyOK := varyFields(resp.Header, out.Header)
	nsr.Vary = vary
	cc := nsr.meta().cc
	fl.res = nsr
	fl.shareable = varyOK && !cc.NoStore
	if c.storable(nsr, cc, varyOK) && !fl.invalidated.Load() {
		c.put(key, nsr, out.Header)
		info.Stored = true
	}
}

// BodyError reports an upstream response whose body could not be read to
// its end; nothing of it was stored.
type BodyError struct {
	Key  string
	Read int // bytes read before the error
	Err  error
}

func (e *BodyError) Error() string {
	return fmt.Sprintf("httpcache: reading the response body of %s failed after %d bytes: %v", e.Key, e.Read, e.Err)
}

func (e *BodyError) Unwrap() error { return e.Err }

// readUpTo reads r to its end if that is at most limit bytes (complete), or
// returns the first bytes read so far when the body is larger.
func readUpTo(r io.Reader, contentLength, limit int64) ([]byte, bool, error) {
	if contentLength > limit {
		return nil, false, nil
	}
	size := 512
	if contentLength >= 0 {
		size = int(contentLength) + 1 // +1: read the EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return buf.Bytes(), false, err
	}
	if n > limit {
		return buf.Bytes(), false, nil
	}
	return buf.Bytes(), true, nil
}

// liveBody is a response body handed to a caller while still streaming; it
// ends the flight's context when closed.
type liveBody struct {
	io.Reader
	body   io.Closer
	cancel func()
	stops  []func() bool
	once   sync.Once
}

func (b *liveBody) Close() error {
	var err error
	b.once.Do(func() {
		for _, stop := range b.stops {
			stop()
		}
		err = b.body.Close()
		b.cancel()
	})
	return err
}

// storable reports whether RFC 9111 section 3 lets a private cache store a
// complete response and whether anything could reuse it.
func (c *Cache) storable(r *StoredResponse, cc CacheControl, varyOK bool) bool {
	if !varyOK || cc.NoStore || r.StatusCode < 200 || r.StatusCode >= 500 ||
		r.StatusCode == http.StatusPartialContent || r.StatusCode == http.StatusNotModified {
		return false
	}
	if !explicitFreshness(cc, r.Header) && !heuristicallyCacheable(r.StatusCode) {
		return false
	}
	m := r.meta()
	return c.lifetime(r) > 0 || m.etag != "" || m.lastModRaw != "" ||
		cc.StaleIfError.Set || cc.StaleWhileRevalidate.Set || c.opts.StaleIfError > 0
}

// put stores r as the variant of key selected by reqHeader, replacing the
// stored responses that request would have selected.
func (c *Cache) put(key string, r *StoredResponse, reqHeader http.Header) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	resps := []*StoredResponse{r}
	if old, ok := c.store.Get(key); ok {
		for _, o := range old.Responses {
			if len(resps) >= c.opts.MaxVariants {
				break
			}
			if o.Credential == r.Credential && varyMatches(o.Vary, reqHeader) {
				continue
			}
			resps = append(resps, o)
		}
	}
	c.store.Set(key, &Entry{Responses: resps})
}

// setValidators adds sr's validators to a request header and reports
// whether it had any.
func setValidators(h http.Header, sr *StoredResponse) bool {
	m := sr.meta()
	if m.etag != "" {
		h.Set("If-None-Match", m.etag)
	}
	if m.lastModRaw != "" {
		h.Set("If-Modified-Since", m.lastModRaw)
	}
	return m.etag != "" || m.lastModRaw != ""
}

func clearValidators(h http.Header) {
	h.Del("If-None-Match")
	h.Del("If-Modified-Since")
}

// merge304 freshens a stored response with a 304's header (RFC 9111
// section 4.3.4), or reports false when the 304's validators name another
// representation.
func merge304(sr *StoredResponse, h http.Header, reqTime, respTime time.Time) (*StoredResponse, bool) {
	m := sr.meta()
	if et := h.Get("Etag"); et != "" && et != m.etag {
		return nil, false
	}
	if lm := h.Get("Last-Modified"); lm != "" && h.Get("Etag") == "" && m.lastModRaw != "" && lm != m.lastModRaw {
		return nil, false
	}
	nh := sr.Header.Clone()
	for k, vs := range h {
		if !updatable(k) {
			continue
		}
		nh[k] = append([]string(nil), vs...)
	}
	if _, ok := h["Date"]; !ok {
		// RFC 9110 section 6.6.1: a cache adds the Date of receipt to a
		// response without one; keeping the stored Date would age the
		// freshened response by the time since the original.
		nh["Date"] = []string{respTime.UTC().Format(http.TimeFormat)}
	}
	if _, ok := h["Age"]; !ok {
		// The 304 was not served from an intermediary cache (RFC 9111
		// section 5.1): the stored Age described the original delivery.
		delete(nh, "Age")
	}
	return &StoredResponse{
		StatusCode:   sr.StatusCode,
		Header:       nh,
		Body:         sr.Body,
		RequestTime:  reqTime,
		ResponseTime: respTime,
		Vary:         sr.Vary,
		Credential:   sr.Credential,
	}, true
}

// updatable reports whether a 304's field replaces the stored one (RFC 9111
// section 3.2: not the framing and hop-by-hop fields).
func updatable(k string) bool {
	switch k {
	case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade", "Content-Encoding", "Content-Range":
		return false
	}
	return !strings.HasPrefix(k, "Proxy-")
}
