package rabbitpubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DialOptions configures Dial. The zero value works.
type DialOptions struct {
	// Heartbeat is the AMQP heartbeat interval; 0 means 10 seconds.
	Heartbeat time.Duration
	// ConnectionName is shown in the RabbitMQ management UI; empty means
	// "fjord".
	ConnectionName string
}

// Conn is a connection to one RabbitMQ broker, shared by the Topics and
// Subscriptions opened from it (each has its own AMQP channel).
//
// Conn never retries and never reconnects in the background. When the
// connection is found closed (the broker restarted, the network broke), the
// call that finds it dials once more; if that dial fails the call returns a
// retryable error and the caller (package pubsub) decides when to try
// again. Conn is safe for concurrent use.
type Conn struct {
	url  string
	opts DialOptions

	mu struct {
		sync.Mutex
		conn   *amqp.Connection
		sock   net.Conn // conn's socket, closed to abandon a call (see do)
		closed bool
	}
}

// Dial connects to the broker at url ("amqp://user:pass@host:5672/vhost")
// within ctx. A failure to reach the broker is a *ConnectionError, which
// IsRetryable reports as retryable.
func Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, error) {
	c := &Conn{url: url}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Heartbeat <= 0 {
		c.opts.Heartbeat = 10 * time.Second
	}
	if c.opts.ConnectionName == "" {
		c.opts.ConnectionName = "fjord"
	}
	if _, err := c.connection(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// connection returns the open AMQP connection, dialing once when there is
// none or it has closed.
func (c *Conn) connection(ctx context.Context) (*amqp.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, ErrClosed
	}
	if c.mu.conn != nil && !c.mu.conn.IsClosed() {
		return c.mu.conn, nil
	}
	conn, sock, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.conn, c.mu.sock = conn, sock
	return conn, nil
}

// do runs f, a synchronous AMQP method (channel.open, queue.declare,
// basic.qos…) on the current connection, within ctx. amqp091 takes no
// context for these and AMQP cannot abandon one method on a channel, so
// when ctx ends first do closes the connection's socket: f returns, every
// channel of the connection closes (their users get retryable errors),
// and the next call dials again. A broker that does not answer within the
// caller's deadline is treated as gone.
func (c *Conn) do(ctx context.Context, op string, f func() error) error {
	c.mu.Lock()
	sock := c.mu.sock
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if sock != nil {
			_ = sock.Close()
		}
		err := <-done
		return &ConnectionError{Op: op, Err: fmt.Errorf("%w (the connection was closed: %v)", ctx.Err(), err)}
	}
}

// dial opens one AMQP connection and returns it with its socket; the TCP
// connect and the AMQP handshake are both bounded by ctx.
func (c *Conn) dial(ctx context.Context) (*amqp.Connection, net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, &ConnectionError{Op: "dial", Err: err}
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(c.opts.ConnectionName)
	var dialed struct {
		sync.Mutex
		conn net.Conn
	}
	cfg := amqp.Config{
		Heartbeat:  c.opts.Heartbeat,
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake that follows is bounded by ctx too: a deadline
			// now, and a closed socket if ctx ends first (below).
			if d, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(d)
			}
			dialed.Lock()
			dialed.conn = conn
			dialed.Unlock()
			return conn, nil
		},
	}
	stop := context.AfterFunc(ctx, func() {
		dialed.Lock()
		defer dialed.Unlock()
		if dialed.conn != nil {
			_ = dialed.conn.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp.DialConfig(c.url, cfg)
	stopped := stop()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return nil, nil, &ConnectionError{Op: "dial", Err: err}
	}
	if !stopped {
		// ctx ended just as the handshake finished; the socket may have a
		// past deadline: do not use it.
		_ = conn.Close()
		return nil, nil, &ConnectionError{Op: "dial", Err: ctx.Err()}
	}
	dialed.Lock()
	defer dialed.Unlock()
	return conn, dialed.conn, nil
}

// channel opens a new AMQP channel on the connection, redialing once when
// the connection has closed.
func (c *Conn) channel(ctx context.Context) (*amqp.Channel, error) {
	conn, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	var ch *amqp.Channel
	err = c.do(ctx, "open channel", func() (err error) {
		ch, err = conn.Channel()
		return err
	})
	if err != nil {
		var ce *ConnectionError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &ConnectionError{Op: "open channel", Err: err}
	}
	return ch, nil
}

// frameMax is the frame_max negotiated by the current connection; 0 when
// there is none.
func (c *Conn) frameMax() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.conn == nil {
		return 0
	}
	return c.mu.conn.Config.FrameSize
}

// Ping checks that the broker answers: it opens and closes a channel,
// dialing once when the connection has closed.
func (c *Conn) Ping(ctx context.Context) error {
	ch, err := c.channel(ctx)
	if err != nil {
		return err
	}
	return ch.Close()
}

// Close closes the connection; the Topics and Subscriptions opened from it
// fail with ErrClosed afterwards. Closing twice returns nil.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil
	}
	c.mu.closed = true
	if c.mu.conn == nil || c.mu.conn.IsClosed() {
		return nil
	}
	err := c.mu.conn.CloseDeadline(time.Now().Add(5 * time.Second))
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
