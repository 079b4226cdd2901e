package faultnet_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fjord-data/fjord/internal/faultnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves lines back until the test ends.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(c, c)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

func TestProxyForwardsUntilCut(t *testing.T) {
	p := faultnet.NewProxy(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("read back %q, %v; want \"ping\\n\"", line, err)
	}
	p.Cut()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("Read after Cut succeeded, want the connection closed")
	}
	if _, err := net.Dial("tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial after Cut = %v, want connection refused", err)
	}
}

func TestBlackholeNeverAnswers(t *testing.T) {
	b := faultnet.NewBlackhole(t)
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read = %v, want the deadline to pass with nothing read", err)
	}
}

func TestRefusedAddr(t *testing.T) {
	if _, err := net.Dial("tcp", faultnet.RefusedAddr(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial = %v, want connection refused", err)
	}
}

func TestProxyFreeze(t *testing.T) {
	p := faultnet.NewProxy(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	p.Freeze()
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read from a frozen proxy = %v, want the deadline to pass with nothing read", err)
	}
}
