package httpcache_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

func d(s int64) httpcache.Delta { return httpcache.Delta{Seconds: s, Set: true} }

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		lines []string
		want  httpcache.CacheControl
	}{
		{nil, httpcache.CacheControl{}},
		{[]string{""}, httpcache.CacheControl{}},
		{[]string{"max-age=60"}, httpcache.CacheControl{MaxAge: d(60)}},
		{[]string{"MAX-AGE=60, Public"}, httpcache.CacheControl{MaxAge: d(60), Public: true}},
		{[]string{`max-age="30"`}, httpcache.CacheControl{MaxAge: d(30)}},
		{[]string{"max-age = 5 , no-cache"}, httpcache.CacheControl{MaxAge: d(5), NoCache: true}},
		{[]string{"max-age=abc"}, httpcache.CacheControl{MaxAge: d(0)}},
		{[]string{"max-age=-1"}, httpcache.CacheControl{MaxAge: d(0)}},
		{[]string{"max-age=99999999999999999999"}, httpcache.CacheControl{MaxAge: d(2147483648)}},
		{[]string{"max-age=10, max-age=20"}, httpcache.CacheControl{MaxAge: d(10)}},
		{[]string{"max-age=10", "max-age=20, no-store"}, httpcache.CacheControl{MaxAge: d(10), NoStore: true}},
		{[]string{"s-maxage=100, max-age=10"}, httpcache.CacheControl{MaxAge: d(10), SMaxAge: d(100)}},
		{[]string{"max-stale"}, httpcache.CacheControl{MaxStale: d(2147483648)}},
		{[]string{"max-stale=5, min-fresh=3, only-if-cached"}, httpcache.CacheControl{MaxStale: d(5), MinFresh: d(3), OnlyIfCached: true}},
		{[]string{"stale-while-revalidate=30, stale-if-error=600"}, httpcache.CacheControl{StaleWhileRevalidate: d(30), StaleIfError: d(600)}},
		{[]string{"stale-if-error=x, stale-if-error=7"}, httpcache.CacheControl{StaleIfError: d(7)}},
		{[]string{`no-cache="Set-Cookie, X-Foo", private="X-Bar"`}, httpcache.CacheControl{NoCache: true, Private: true}},
		{[]string{`ext="a,b", max-age=1`}, httpcache.CacheControl{MaxAge: d(1)}},
		{[]string{`ext="a\"b,c", must-revalidate`}, httpcache.CacheControl{MustRevalidate: true}},
		{[]string{`garbage here, no-store`}, httpcache.CacheControl{NoStore: true}},
		{[]string{`max-age=1 2, no-store`}, httpcache.CacheControl{NoStore: true}},
		{[]string{`,,no-transform,,immutable,proxy-revalidate,must-understand`}, httpcache.CacheControl{NoTransform: true, Immutable: true, ProxyRevalidate: true, MustUnderstand: true}},
		{[]string{`"unterminated, no-store`}, httpcache.CacheControl{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, httpcache.ParseCacheControl(tt.lines...)); diff != "" {
			t.Errorf("ParseCacheControl(%q) (-want +got)\n%s", tt.lines, diff)
		}
	}
}

func TestCacheControlString(t *testing.T) {
	cc := httpcache.CacheControl{MaxAge: d(60), StaleIfError: d(5), NoCache: true, Private: true}
	if got, want := cc.String(), "max-age=60, stale-if-error=5, no-cache, private"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// FuzzParseCacheControl checks that parsing never panics and that String
// is a faithful, stable rendering of what was parsed. The seed corpus is
// in testdata/fuzz/FuzzParseCacheControl.
func FuzzParseCacheControl(f *testing.F) {
	f.Add("max-age=60, stale-while-revalidate=30")
	f.Fuzz(func(t *testing.T, field string) {
		cc := httpcache.ParseCacheControl(field)
		s := cc.String()
		again := httpcache.ParseCacheControl(s)
		if diff := cmp.Diff(cc, again); diff != "" {
			t.Fatalf("ParseCacheControl(%q).String() = %q parses differently (-first +second)\n%s", field, s, diff)
		}
		if s2 := again.String(); s2 != s {
			t.Fatalf("String not stable: %q then %q", s, s2)
		}
		for _, x := range []httpcache.Delta{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError} {
			if x.Seconds < 0 || x.Seconds > 2147483648 || (!x.Set && x.Seconds != 0) {
				t.Fatalf("ParseCacheControl(%q): delta out of range: %+v", field, x)
			}
		}
	})
}
