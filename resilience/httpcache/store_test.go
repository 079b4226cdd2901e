package httpcache_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/resilience/httpcache"
)

func entry(bodySize int) *httpcache.Entry {
	return &httpcache.Entry{Responses: []*httpcache.StoredResponse{{
		StatusCode: 200, Header: http.Header{}, Body: []byte(strings.Repeat("x", bodySize)),
	}}}
}

func keys(l *httpcache.LRU, candidates ...string) []string {
	var got []string
	for _, k := range candidates {
		if _, ok := l.Get(k); ok {
			got = append(got, k)
		}
	}
	return got
}

func TestLRUEntryBound(t *testing.T) {
	var evicted []string
	l := httpcache.NewLRU(httpcache.LRUOptions{MaxEntries: 2, OnEvict: func(k string, _ int64) { evicted = append(evicted, k) }})
	l.Set("a", entry(1))
	l.Set("b", entry(1))
	l.Get("a") // a is now the most recently used
	l.Set("c", entry(1))
	if diff := cmp.Diff([]string{"b"}, evicted); diff != "" {
		t.Errorf("evicted (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "c"}, keys(l, "a", "b", "c")); diff != "" {
		t.Errorf("kept (-want +got)\n%s", diff)
	}
}

func TestLRUByteBound(t *testing.T) {
	size := entry(1000).Size()
	l := httpcache.NewLRU(httpcache.LRUOptions{MaxBytes: 3 * size})
	for _, k := range []string{"a", "b", "c", "d"} {
		l.Set(k, entry(1000))
	}
	if diff := cmp.Diff([]string{"b", "c", "d"}, keys(l, "a", "b", "c", "d")); diff != "" {
		t.Errorf("kept (-want +got)\n%s", diff)
	}
	n, bytes := l.Len()
	if n != 3 || bytes != 3*size {
		t.Errorf("Len() = %d entries, %d bytes; want 3, %d", n, bytes, 3*size)
	}
	// Replacing an entry counts only its new size; an entry larger than the
	// bound is not stored and removes the old one.
	l.Set("b", entry(10))
	if _, bytes := l.Len(); bytes != 2*size+entry(10).Size() {
		t.Errorf("after replacement %d bytes, want %d", bytes, 2*size+entry(10).Size())
	}
	l.Set("c", entry(10_000))
	l.Delete("d")
	if diff := cmp.Diff([]string{"b"}, keys(l, "a", "b", "c", "d")); diff != "" {
		t.Errorf("kept after oversize Set and Delete (-want +got)\n%s", diff)
	}
	if n, bytes := l.Len(); n != 1 || bytes != entry(10).Size() {
		t.Errorf("Len() = %d, %d; want 1, %d", n, bytes, entry(10).Size())
	}
}

func TestCacheRespectsStoreBound(t *testing.T) {
	o := &origin{handle: versioned("max-age=60")}
	store := httpcache.NewLRU(httpcache.LRUOptions{MaxEntries: 2})
	c := httpcache.New(o, &httpcache.Options{Store: store})
	defer c.Close()
	for _, p := range []string{"/1", "/2", "/3", "/1"} {
		get(c, t.Context(), "http://svc.test"+p)
	}
	if n := o.count(); n != 4 {
		t.Errorf("upstream calls = %d, want 4 (/1 was evicted by /3)", n)
	}
	if n, _ := store.Len(); n != 2 {
		t.Errorf("store holds %d entries, want 2", n)
	}
}
