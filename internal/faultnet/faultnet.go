// Package faultnet stands between a client and a real server on loopback
// so that tests can take the server away: a Proxy forwards TCP connections
// until it is cut, and a Blackhole accepts connections and never answers.
// Tests of broker adapters use it to check that a lost or unreachable
// broker gives a clear, retryable error bounded by the caller's context.
//
//	p := faultnet.NewProxy(t, "127.0.0.1:5672")
//	conn := dial(p.Addr())
//	p.Freeze() // connections stay open, nothing gets through
//	p.Cut()    // every connection drops; new ones are refused
package faultnet

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards every connection made to Addr to a target address until
// Cut. Its goroutines end by Cut, at the latest at the test's cleanup.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup
	frozen chan struct{}
	freeze sync.Once

	mu struct {
		sync.Mutex
		conns map[net.Conn]bool
		cut   bool
	}
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultnet: listening: %v", err)
	}
	p := &Proxy{target: target, ln: ln, frozen: make(chan struct{})}
	p.mu.conns = make(map[net.Conn]bool)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Cut)
	return p
}

// Addr is the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track registers a pair of connections, or closes them when the proxy
// is already cut.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cut {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.mu.conns[c] = true
	}
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.frozen: // swallowed: the other side hears nothing
			default:
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze keeps every connection open but forwards nothing more in either
// direction: a server that hangs. Cut still ends them.
func (p *Proxy) Freeze() { p.freeze.Do(func() { close(p.frozen) }) }

// Cut closes every forwarded connection and stops listening, so that new
// connections are refused, and waits for the proxy's goroutines to end.
// Cutting twice is harmless.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.mu.cut = true
	for c := range p.mu.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// Blackhole accepts TCP connections and never reads or writes: a server
// that hangs. Its connections close at the test's cleanup.
type Blackhole struct {
	ln net.Listener
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		conns []net.Conn
	}
}

// NewBlackhole listens on a free loopback port.
func NewBlackhole(t testing.TB) *Blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultnet: listening: %v", err)
	}
	b := &Blackhole{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.mu.conns = append(b.mu.conns, c)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		b.wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.mu.conns {
			_ = c.Close()
		}
	})
	return b
}

// Addr is the address that hangs.
func (b *Blackhole) Addr() string { return b.ln.Addr().String() }

// RefusedAddr returns a loopback address where nothing listens: a
// connection to it is refused.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultnet: listening: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
