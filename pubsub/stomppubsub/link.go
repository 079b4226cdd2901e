package stomppubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// DialOptions configures the STOMP connection of a Topic or Subscription.
// The zero value connects without credentials to virtual host "/".
type DialOptions struct {
	// Login and Passcode are the STOMP credentials.
	Login, Passcode string
	// Host is the STOMP virtual host header; empty means "/" (ActiveMQ
	// ignores it; RabbitMQ's STOMP plugin takes it as the vhost).
	Host string
	// HeartBeat is the heart-beat interval asked for in both directions;
	// 0 means 10 seconds, negative disables heart-beats.
	HeartBeat time.Duration
}

// link is one STOMP connection that is dialed when first needed and again
// after it was dropped. It never retries: each call dials at most once.
// Its owner (a Topic or Subscription) serializes calls to it.
type link struct {
	addr string
	opts DialOptions

	conn *stomp.Conn
	net  *watchedConn
	// calls counts go-stomp calls still running after bounded gave up on
	// them (see bounded); close waits for them.
	calls sync.WaitGroup
}

// watchedConn closes dead when a read fails: go-stomp does not tell its
// user that its connection ended, and a receipt asked for just as it ends
// is never answered.
type watchedConn struct {
	net.Conn
	dead chan struct{}
	once sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(func() { close(c.dead) })
	}
	return n, err
}

// get returns the connection, dialing once when there is none or it has
// died.
func (l *link) get(ctx context.Context) (*stomp.Conn, error) {
	if l.conn != nil {
		select {
		case <-l.net.dead:
			l.drop()
		default:
			return l.conn, nil
		}
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, &ConnectionError{Op: "dial " + l.addr, Err: err}
	}
	netConn := &watchedConn{Conn: raw, dead: make(chan struct{})}
	hb := l.opts.HeartBeat
	if hb == 0 {
		hb = 10 * time.Second
	}
	if hb < 0 {
		hb = 0
	}
	host := l.opts.Host
	if host == "" {
		host = "/"
	}
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.AcceptVersion(stomp.V12),
		stomp.ConnOpt.Host(host),
		stomp.ConnOpt.HeartBeat(hb, hb),
		stomp.ConnOpt.Logger(quiet{}),
	}
	if l.opts.Login != "" {
		opts = append(opts, stomp.ConnOpt.Login(l.opts.Login, l.opts.Passcode))
	}
	l.net = netConn
	var conn *stomp.Conn
	err = l.bounded(ctx, func() (err error) {
		conn, err = stomp.Connect(netConn, opts...)
		return err
	})
	if err != nil {
		_ = netConn.Close()
		l.net = nil
		return nil, &ConnectionError{Op: "connect " + l.addr, Err: err}
	}
	l.conn = conn
	return conn, nil
}

// drop closes the connection abruptly; the broker redelivers what was
// received and not acknowledged on it. The next get dials again.
func (l *link) drop() {
	if l.conn == nil {
		return
	}
	_ = l.net.Close()
	_ = l.conn.MustDisconnect()
	l.conn, l.net = nil, nil
}

// close disconnects gracefully (the broker has processed every frame sent
// before), within a few seconds, and waits for abandoned calls to end.
func (l *link) close() error {
	defer l.calls.Wait()
	if l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.bounded(ctx, l.conn.Disconnect)
	l.drop()
	if errors.Is(err, stomp.ErrClosedUnexpectedly) {
		// The broker closes the socket once it has answered DISCONNECT,
		// and that may be seen before the receipt. Either way the
		// connection is gone, which is what Close is for.
		return nil
	}
	return err
}

// bounded runs f, a blocking go-stomp call on the link's connection,
// within ctx: go-stomp's calls take no context. When ctx ends or the
// connection dies first, bounded closes the connection, which makes f
// return (at the latest when go-stomp's heart-beat timeout gives up on a
// receipt), and returns at once; the call still running is waited for by
// close.
func (l *link) bounded(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	l.calls.Add(1)
	go func() {
		defer l.calls.Done()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = l.net.Close()
		return fmt.Errorf("%w (the connection was closed)", ctx.Err())
	case <-l.net.dead:
		select {
		case err := <-done: // f saw it too
			return err
		default:
		}
		_ = l.net.Close()
		return stomp.ErrClosedUnexpectedly
	}
}

// ping makes one round trip to the broker (a transaction begun and
// aborted with a receipt), dialing once when there is no connection.
func (l *link) ping(ctx context.Context) error {
	conn, err := l.get(ctx)
	if err != nil {
		return err
	}
	err = l.bounded(ctx, func() error {
		tx, err := conn.BeginWithError()
		if err != nil {
			return err
		}
		return tx.AbortWithReceipt()
	})
	if err != nil {
		l.drop()
		if ctx.Err() != nil {
			return &ConnectionError{Op: "ping", Err: err}
		}
		return classify("ping", err)
	}
	return nil
}

// quiet drops go-stomp's log lines: errors reach the caller as values.
type quiet struct{}

func (quiet) Debugf(string, ...any)   {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Debug(string)            {}
func (quiet) Info(string)             {}
func (quiet) Warning(string)          {}
func (quiet) Error(string)            {}

// ensure stomp.Logger is satisfied.
var _ stomp.Logger = quiet{}
