package resilience

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// TransportOptions configure a Transport. The zero value works.
type TransportOptions struct {
	// Options configure the transport's pipeline (Name defaults to
	// "http"; Neutral is consulted for errors other than status codes).
	Options
	// Dependency names the dependency of a request, which keys a Breakers
	// registry (default: the request's host).
	Dependency func(*http.Request) string
	// IdempotencyKeys makes the transport give requests with an unsafe
	// method (POST, PATCH…) and no Idempotency-Key header a fresh random
	// key, so that they may be retried and hedged. Without it such requests
	// are tried once.
	IdempotencyKeys bool
	// MaxErrorBody is how much of a failed response's body (5xx, 429) is
	// kept to give back when it is the final answer (default 64 KiB; the
	// rest is cut off).
	MaxErrorBody int
}

// IdempotencyKeyHeader is the header that makes an unsafe request
// retryable (draft-ietf-httpapi-idempotency-key-header).
const IdempotencyKeyHeader = "Idempotency-Key"

// Transport is an http.RoundTripper that sends requests through a
// pipeline. It classifies responses: 500, 502, 503, 504 and 429 are
// retryable failures (their Retry-After is honoured), other 5xx are
// failures that are not retried, everything else is a success; transport
// errors are retryable failures. Only idempotent requests (GET, HEAD,
// OPTIONS, TRACE, PUT, DELETE) or those with an Idempotency-Key are
// retried or hedged, and only if their body can be rewound (GetBody).
// When the last attempt failed with a status code, RoundTrip returns that
// response (with its body, up to MaxErrorBody) and no error; when a policy
// refused the request it returns the policy's error (ErrOpen…). It is
// safe for concurrent use.
type Transport struct {
	next http.RoundTripper
	p    *Pipeline[*http.Response]
	o    TransportOptions
}

// NewTransport builds a Transport over next (nil: http.DefaultTransport)
// with the policies, outermost first (see Pipeline for the order rules).
// A Fallback[*http.Response] can serve a cached response: RequestFrom
// gives it the request.
func NewTransport(next http.RoundTripper, o TransportOptions, policies ...Policy) (*Transport, error) {
	if next == nil {
		next = http.DefaultTransport
	}
	if o.Name == "" {
		o.Name = "http"
	}
	if o.MaxErrorBody < 0 {
		return nil, configErr("transport", fmt.Sprintf("MaxErrorBody %d is negative", o.MaxErrorBody), "use 0 for the default of 64 KiB")
	}
	if o.MaxErrorBody == 0 {
		o.MaxErrorBody = 64 << 10
	}
	p, err := New[*http.Response](o.Options, policies...)
	if err != nil {
		return nil, err
	}
	p.keep = keepBody
	p.drop = func(resp *http.Response) {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
	}
	return &Transport{next: next, p: p, o: o}, nil
}

// String prints the transport's pipeline.
func (t *Transport) String() string { return t.p.String() }

type requestKey struct{}

// RequestFrom returns the request a Transport is sending, from the context
// its policies and fallback receive, or nil.
func RequestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	dep := req.URL.Host
	if t.o.Dependency != nil {
		dep = t.o.Dependency(req)
	}
	retryable := idempotent(req.Method) || req.Header.Get(IdempotencyKeyHeader) != ""
	if !retryable && t.o.IdempotencyKeys {
		req = req.Clone(req.Context())
		req.Header.Set(IdempotencyKeyHeader, NewIdempotencyKey())
		retryable = true
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		retryable = false
	}
	ctx := context.WithValue(WithDependency(req.Context(), dep), requestKey{}, req)
	if !retryable {
		ctx = WithoutHedging(ctx)
	}
	a := &attempts{t: t, req: req, dep: dep, retryable: retryable}
	resp, err := t.p.Do(ctx, a.do)
	if a.n.Load() == 0 && req.Body != nil {
		req.Body.Close() // a policy refused the request: RoundTrip must still close the body
	}
	var se *StatusError
	if err != nil && errors.As(err, &se) {
		return se.response(), nil
	}
	return resp, err
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete, "":
		return true
	}
	return false
}

// NewIdempotencyKey returns a random 128-bit key in hex, for the
// Idempotency-Key header.
func NewIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attempts sends the attempts of one request.
type attempts struct {
	t         *Transport
	req       *http.Request
	dep       string
	retryable bool
	n         atomic.Int32
}

func (a *attempts) do(ctx context.Context) (*http.Response, error) {
	r := a.req.WithContext(ctx)
	if a.n.Add(1) > 1 && a.req.GetBody != nil {
		body, err := a.req.GetBody()
		if err != nil {
			return nil, Permanent(fmt.Errorf("resilience: rewinding the body of %s %s: %w", a.req.Method, a.req.URL.Redacted(), err))
		}
		r.Body = body
	}
	resp, err := a.t.next.RoundTrip(r)
	if err != nil {
		return nil, a.mark(err, true)
	}
	if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(a.t.o.MaxErrorBody)))
	resp.Body.Close()
	se := &StatusError{Dependency: a.dep, StatusCode: resp.StatusCode, Retry: retryAfter(resp.Header.Get("Retry-After")), resp: resp, body: body}
	switch resp.StatusCode {
	case 500, 502, 503, 504, 429:
		return nil, a.mark(se, true)
	}
	return nil, a.mark(se, false)
}

func (a *attempts) mark(err error, retryable bool) error {
	if retryable && a.retryable {
		return err
	}
	return Permanent(err)
}

// StatusError is a response whose status counts as a failure (5xx, 429).
// RoundTrip turns it back into the response when it is the final answer;
// policies and hooks see it as an error.
type StatusError struct {
	Dependency string
	StatusCode int
	Retry      time.Duration // from Retry-After; 0 when absent
	resp       *http.Response
	body       []byte
}

// Error names the dependency and the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("resilience: %q answered %d %s", e.Dependency, e.StatusCode, http.StatusText(e.StatusCode))
}

// RetryAfter implements RetryAfterError.
func (e *StatusError) RetryAfter() time.Duration { return e.Retry }

func (e *StatusError) response() *http.Response {
	r := *e.resp
	r.Body = io.NopCloser(bytes.NewReader(e.body))
	r.ContentLength = int64(len(e.body))
	return &r
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if errors.Is(err, strconv.ErrRange) && s > 0 {
		return math.MaxInt64 // more digits than an int64 holds: longer than any MaxDelay
	}
	if err == nil && s >= 0 {
		if s > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64 // longer than any MaxDelay: the retry gives up
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// keepBody hands the cancellation of a successful attempt's context to the
// response body: it is cancelled when the body is closed or read to the end.
func keepBody(resp *http.Response, cancel context.CancelFunc) *http.Response {
	if resp == nil || resp.Body == nil {
		cancel()
		return resp
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp
}

type cancelBody struct {
	io.ReadCloser
	once   sync.Once
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.cancel)
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.cancel)
	return err
}
