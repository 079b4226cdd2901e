package httpcache

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Store keeps entries by key. The cache builds a new Entry for every change
// and never modifies one after handing it to Set; a Store must not modify
// entries either, so that Get may return the stored pointer. Implementations
// must be safe for concurrent use. A Store may drop entries at any time
// (eviction); Get then reports false.
type Store interface {
	// Get returns the entry under key.
	Get(key string) (*Entry, bool)
	// Set stores e under key, replacing what was there.
	Set(key string, e *Entry)
	// Delete removes the entry under key, if any.
	Delete(key string)
}

// Entry is what the cache keeps for one URL: its stored responses, one per
// variant (RFC 9111 section 4.1), the most recently stored first.
type Entry struct {
	Responses []*StoredResponse
}

// Size is the entry's approximate memory footprint in bytes, the measure of
// the LRU's byte bound.
func (e *Entry) Size() int64 {
	var n int64 = 64
	for _, r := range e.Responses {
		n += r.Size()
	}
	return n
}

// StoredResponse is one complete stored response and what the cache needs
// to reuse it. Its fields are exported so that other Store backends can
// encode it.
type StoredResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	// RequestTime and ResponseTime are when the request that produced the
	// response was sent and when its response arrived (RFC 9111 section
	// 4.2.3); a 304 revalidation moves both.
	RequestTime, ResponseTime time.Time
	// Vary lists the request's values of the fields the response's Vary
	// header names, in that order (each the field's lines joined by ", ").
	Vary []VaryField
	// Credential is the hex SHA-256 of the request's Authorization field,
	// or "" without one: a response is reused only for the same credential.
	Credential string

	derived atomic.Pointer[meta] // derived from Header, computed once
}

// VaryField is a request field named by a response's Vary header, with
// the request's value for it.
type VaryField struct {
	Name, Value string
}

// Size is the response's approximate memory footprint in bytes.
func (r *StoredResponse) Size() int64 {
	n := int64(len(r.Body)) + 160 + int64(len(r.Credential))
	for k, vs := range r.Header {
		n += int64(len(k)) + 16
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	for _, f := range r.Vary {
		n += int64(len(f.Name)+len(f.Value)) + 32
	}
	return n
}

// LRUOptions bound an LRU store. The zero value works.
type LRUOptions struct {
	// MaxBytes bounds the sum of the entries' sizes (Entry.Size); default
	// 64 MiB.
	MaxBytes int64
	// MaxEntries bounds the number of entries (URLs); default 10,000.
	MaxEntries int
	// OnEvict, if set, is called (without the LRU's lock held) for each
	// entry dropped to respect the bounds, not for Delete or replacement.
	OnEvict func(key string, size int64)
}

// LRU is an in-memory Store that evicts the least recently used entries
// beyond its bounds. It is safe for concurrent use.
type LRU struct {
	opts LRUOptions
	mu   struct {
		sync.Mutex
		items map[string]*lruNode
		head  lruNode // sentinel: head.next is the most recently used
		bytes int64
	}
}

type lruNode struct {
	key        string
	entry      *Entry
	size       int64
	prev, next *lruNode
}

// NewLRU returns an empty LRU store.
func NewLRU(opts LRUOptions) *LRU {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10_000
	}
	l := &LRU{opts: opts}
	l.mu.items = make(map[string]*lruNode)
	l.mu.head.next, l.mu.head.prev = &l.mu.head, &l.mu.head
	return l
}

// Get returns the entry under key and marks it most recently used.
func (l *LRU) Get(key string) (*Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.mu.items[key]
	if !ok {
		return nil, false
	}
	l.unlinkLocked(n)
	l.pushFrontLocked(n)
	return n.entry, true
}

// Set stores e under key as the most recently used entry, then evicts the
// least recently used entries until the bounds hold. An entry larger than
// MaxBytes on its own is not stored (and removes what key held).
func (l *LRU) Set(key string, e *Entry) {
	size := e.Size()
	var evicted []*lruNode
	l.mu.Lock()
	if n, ok := l.mu.items[key]; ok {
		l.removeLocked(n)
	}
	if size <= l.opts.MaxBytes {
		n := &lruNode{key: key, entry: e, size: size}
		l.mu.items[key] = n
		l.mu.bytes += size
		l.pushFrontLocked(n)
		for l.mu.bytes > l.opts.MaxBytes || len(l.mu.items) > l.opts.MaxEntries {
			old := l.mu.head.prev
			l.removeLocked(old)
			evicted = append(evicted, old)
		}
	}
	l.mu.Unlock()
	if l.opts.OnEvict != nil {
		for _, n := range evicted {
			l.opts.OnEvict(n.key, n.size)
		}
	}
}

// Delete removes the entry under key.
func (l *LRU) Delete(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.mu.items[key]; ok {
		l.removeLocked(n)
	}
}

// Len returns the number of entries and their total size in bytes.
func (l *LRU) Len() (entries int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.items), l.mu.bytes
}

func (l *LRU) removeLocked(n *lruNode) {
	l.unlinkLocked(n)
	delete(l.mu.items, n.key)
	l.mu.bytes -= n.size
}

func (l *LRU) unlinkLocked(n *lruNode) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (l *LRU) pushFrontLocked(n *lruNode) {
	h := &l.mu.head
	n.prev, n.next = h, h.next
	h.next.prev = n
	h.next = n
}
