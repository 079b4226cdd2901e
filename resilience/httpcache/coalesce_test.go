package httpcache_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

// get sends a GET on ctx and summarises the outcome.
func get(c http.RoundTripper, ctx context.Context, url string) result {
	resp, err := c.RoundTrip(httptest.NewRequestWithContext(ctx, "GET", url, nil))
	if err != nil {
		return result{Err: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{Err: err.Error()}
	}
	return result{Code: resp.StatusCode, Status: resp.Header.Get("X-Fjord-Cache"), Body: string(b)}
}

func TestCoalescing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			<-release
			versioned("max-age=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		const callers = 10
		leaderCtx, cancelLeader := context.WithCancel(t.Context())
		got := make([]result, callers)
		var wg sync.WaitGroup
		for i := range callers {
			ctx := t.Context()
			if i == 0 {
				ctx = leaderCtx
			}
			wg.Go(func() { got[i] = get(c, ctx, "http://svc.test/items/1") })
			synctest.Wait() // the first caller starts the flight, the others join it
		}
		cancelLeader()
		synctest.Wait()
		if diff := cmp.Diff(result{Err: context.Canceled.Error()}, got[0]); diff != "" {
			t.Errorf("cancelled leader (-want +got)\n%s", diff)
		}
		close(release)
		wg.Wait()
		want := make([]result, callers)
		want[0] = result{Err: context.Canceled.Error()}
		for i := 1; i < callers; i++ {
			want[i] = result{Code: 200, Status: "coalesced", Body: "v1"}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("coalesced callers (-want +got)\n%s", diff)
		}
		if n := o.count(); n != 1 {
			t.Errorf("%d callers made %d upstream requests, want 1", callers, n)
		}
		if diff := cmp.Diff(result{Code: 200, Status: "hit", Body: "v1"}, get(c, t.Context(), "http://svc.test/items/1")); diff != "" {
			t.Errorf("after the flight (-want +got)\n%s", diff)
		}
	})
}

func TestCoalescingHonoursVary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			<-release
			w.Header().Set("Vary", "Accept")
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, r.Header.Get("Accept"))
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		got := make([]string, 2)
		var wg sync.WaitGroup
		for i, accept := range []string{"a/json", "a/xml"} {
			wg.Go(func() {
				req := httptest.NewRequest("GET", "http://svc.test/v", nil)
				req.Header.Set("Accept", accept)
				resp, err := c.RoundTrip(req)
				if err != nil {
					got[i] = err.Error()
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				got[i] = string(b) + " " + resp.Header.Get("X-Fjord-Cache")
			})
			synctest.Wait()
		}
		close(release)
		wg.Wait()
		if diff := cmp.Diff([]string{"a/json miss", "a/xml bypass"}, got); diff != "" {
			t.Errorf("a coalesced caller of another variant must fetch its own (-want +got)\n%s", diff)
		}
	})
}

// brokenBody answers with a body that fails after some bytes.
type brokenBody struct {
	mu    sync.Mutex
	calls int
}

func (b *brokenBody) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Cache-Control": {"max-age=60"}},
		Body:          io.NopCloser(io.MultiReader(strings.NewReader("half"), errReader{io.ErrUnexpectedEOF})),
		ContentLength: -1,
		Request:       req,
	}, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestIncompleteBodyIsNotStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &brokenBody{}
		c := httpcache.New(up, nil)
		defer c.Close()
		for i := range 2 {
			_, err := c.RoundTrip(httptest.NewRequest("GET", "http://svc.test/x", nil))
			var be *httpcache.BodyError
			if !errors.As(err, &be) || !errors.Is(err, io.ErrUnexpectedEOF) || be.Read != 4 {
				t.Errorf("request %d: err = %v, want a BodyError after 4 bytes wrapping %v", i, err, io.ErrUnexpectedEOF)
			}
		}
		if up.calls != 2 {
			t.Errorf("upstream calls = %d, want 2 (nothing stored)", up.calls)
		}
	})
}

func TestLargeBodyIsStreamedNotStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		big := strings.Repeat("x", 100)
		release := make(chan struct{})
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			<-release
			w.Header().Set("Cache-Control", "max-age=60")
			io.WriteString(w, big)
		}}
		c := httpcache.New(o, &httpcache.Options{MaxEntryBytes: 10})
		defer c.Close()
		var leader *http.Response
		var follower result
		var wg sync.WaitGroup
		wg.Go(func() {
			var err error
			if leader, err = c.RoundTrip(httptest.NewRequest("GET", "http://svc.test/big", nil)); err != nil {
				t.Errorf("leader: %v", err)
			}
		})
		synctest.Wait()
		wg.Go(func() { follower = get(c, t.Context(), "http://svc.test/big") })
		synctest.Wait()
		close(release)
		wg.Wait()
		if leader == nil {
			return
		}
		// The leader reads half of the streamed body and gives up.
		half := make([]byte, 50)
		if _, err := io.ReadFull(leader.Body, half); err != nil {
			t.Fatal(err)
		}
		leader.Body.Close()
		if got := leader.Header.Get("X-Fjord-Cache"); got != "miss" {
			t.Errorf("leader status %q, want miss", got)
		}
		if diff := cmp.Diff(result{Code: 200, Status: "bypass", Body: big}, follower); diff != "" {
			t.Errorf("follower of an oversized response (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(result{Code: 200, Status: "miss", Body: big}, get(c, t.Context(), "http://svc.test/big")); diff != "" {
			t.Errorf("after the oversized response (-want +got)\n%s", diff)
		}
		if n := o.count(); n != 3 {
			t.Errorf("upstream calls = %d, want 3", n)
		}
	})
}

func TestCloseCancelsBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 2 {
				<-r.Context().Done() // a refresh that hangs until cancelled
				return
			}
			versioned("max-age=1, stale-while-revalidate=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		get(c, t.Context(), "http://svc.test/r")
		time.Sleep(2 * time.Second)
		if got := get(c, t.Context(), "http://svc.test/r"); got.Status != "stale" {
			t.Errorf("status %q, want stale", got.Status)
		}
		synctest.Wait() // the refresh is blocked upstream
		c.Close()       // returns only when the refresh has ended
		if got := get(c, t.Context(), "http://svc.test/r"); got.Err != "" || o.count() != 3 {
			t.Errorf("after Close: %+v, %d calls; want a pass-through request", got, o.count())
		}
	})
}

func TestRefreshTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			<-r.Context().Done()
		}}
		c := httpcache.New(o, &httpcache.Options{RefreshTimeout: 5 * time.Second})
		defer c.Close()
		start := time.Now()
		got := get(c, t.Context(), "http://svc.test/slow")
		if diff := cmp.Diff(result{Err: context.DeadlineExceeded.Error()}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("gave up after %v, want the 5s RefreshTimeout", d)
		}
	})
}

type traceKey struct{}

func TestRefreshKeepsContextValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []any
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			mu.Lock()
			seen = append(seen, r.Context().Value(traceKey{}))
			mu.Unlock()
			versioned("max-age=1, stale-while-revalidate=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		ctx := context.WithValue(t.Context(), traceKey{}, "trace-1")
		get(c, ctx, "http://svc.test/t") // a miss, on the cache's own context
		time.Sleep(2 * time.Second)
		ctx = context.WithValue(t.Context(), traceKey{}, "trace-2")
		get(c, ctx, "http://svc.test/t") // stale: a background refresh
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if diff := cmp.Diff([]any{"trace-1", "trace-2"}, seen); diff != "" {
			t.Errorf("context values seen upstream (-want +got)\n%s", diff)
		}
	})
}

func TestMismatched304RefetchesWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=1")
			if r.Header.Get("If-None-Match") != "" {
				w.Header().Set("Etag", `"other"`)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Etag", `"e`+strconv.Itoa(n)+`"`)
			io.WriteString(w, "v"+strconv.Itoa(n))
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		get(c, t.Context(), "http://svc.test/m")
		time.Sleep(2 * time.Second)
		if diff := cmp.Diff(result{Code: 200, Status: "miss", Body: "v3"}, get(c, t.Context(), "http://svc.test/m")); diff != "" {
			t.Errorf("after a 304 for another ETag (-want +got)\n%s", diff)
		}
		if got := o.lastHeader().Get("If-None-Match"); got != "" {
			t.Errorf("the refetch sent If-None-Match %q, want none", got)
		}
	})
}

func TestInvalidationDuringAMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		o := &origin{handle: func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == http.MethodGet && n == 1 {
				<-release // the first GET's response was produced before the POST
			}
			versioned("max-age=60")(w, r, n)
		}}
		c := httpcache.New(o, nil)
		defer c.Close()
		var first result
		var wg sync.WaitGroup
		wg.Go(func() { first = get(c, t.Context(), "http://svc.test/inv") })
		synctest.Wait()
		resp, err := c.RoundTrip(httptest.NewRequest("POST", "http://svc.test/inv", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		close(release)
		wg.Wait()
		if diff := cmp.Diff(result{Code: 200, Status: "miss", Body: "v1"}, first); diff != "" {
			t.Errorf("the GET in flight (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(result{Code: 200, Status: "miss", Body: "v3"}, get(c, t.Context(), "http://svc.test/inv")); diff != "" {
			t.Errorf("the GET after the POST must not see the older response (-want +got)\n%s", diff)
		}
	})
}
