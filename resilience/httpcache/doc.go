// Package httpcache is a private HTTP cache for clients (RFC 9111, with
// stale-while-revalidate and stale-if-error from RFC 5861), as an
// http.RoundTripper that wraps another:
//
//	cache := httpcache.New(http.DefaultTransport, &httpcache.Options{
//		StaleIfError: 10 * time.Minute, // serve stale copies while the dependency fails
//	})
//	defer cache.Close()
//	client := &http.Client{Transport: cache}
//	resp, err := client.Get("http://catalog.internal/items/42")
//	// resp.Header.Get("X-Fjord-Cache"): hit, miss, stale, revalidated, stale-if-error, coalesced, bypass
//
// What it does, for a cache private to one client:
//
//   - Only GET responses are stored (HEAD is answered from them); only
//     complete bodies of at most Options.MaxEntryBytes, never server
//     errors (5xx), never with no-store or Vary: *. Freshness comes from
//     max-age, else Expires − Date, less the response's age (Age, Date and
//     the request's round trip); s-maxage is ignored, private responses are
//     stored; heuristic freshness is off unless Options.Heuristic is set.
//     404 and 410 without freshness information become negative entries
//     for Options.NegativeTTL.
//   - Stale responses are revalidated with If-None-Match (ETag) and
//     If-Modified-Since (Last-Modified); a 304 freshens the stored response
//     and merges its header fields. no-cache responses are revalidated on
//     every use; must-revalidate forbids serving them stale at all.
//   - Within stale-while-revalidate a stale response is served at once and
//     refreshed in the background. Within stale-if-error (the response's,
//     the request's, or Options.StaleIfError) it is served when upstream
//     returns 500, 502, 503 or 504 or fails.
//   - Concurrent requests for the same URL and credential share one
//     upstream request (coalescing). It runs on a context detached from the
//     callers' cancellation, bounded by Options.RefreshTimeout, so the
//     caller that started it may give up without failing the others. The
//     cache reads a response to its end before handing it out, so that it is
//     stored and shared only when complete; a body larger than
//     Options.MaxEntryBytes is streamed to the caller that asked first
//     instead, and neither stored nor shared.
//   - Vary: each variant is stored under the request's values of the fields
//     it names. Authorization and Cookie are always part of the variant (as
//     a SHA-256, never the credential itself): one caller's response is
//     never served to another credential.
//   - Unsafe methods (POST, PUT, DELETE, …) that succeed invalidate the URL
//     and their Location and Content-Location on the same host.
//   - Requests carrying their own conditionals or Range, or Cache-Control:
//     no-store, pass through; the request's max-age, min-fresh, max-stale,
//     no-cache and only-if-cached are honoured.
//
// Memory is bounded by the Store, by default an LRU bounded by bytes and
// entries (NewLRU); Store is a three-method interface for other backends.
//
// For a circuit breaker's fallback ("serve stale while the dependency is
// down"), Stale(req, maxAge) returns a stored copy no older than maxAge
// without calling upstream, and Fallback(maxAge) wraps it as a fallback
// function:
//
//	if resp, ok := cache.Stale(req, 15*time.Minute); ok { … }
//
// Hooks (OnRequest, OnRefresh) report each request's Status and each
// upstream request the cache made, for metrics and traces.
package httpcache
