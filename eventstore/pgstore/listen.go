package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenConn opens the store's own connection (with the pool's
// configuration, outside the pool) and listens for commits on it.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("pgstore: opening the listening connection: %w", describe(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.notify}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("pgstore: listening for commits: %w", describe(err))
	}
	return conn, nil
}

// listen advances the head as commit notifications arrive on conn, until
// ctx ends. Each commit transaction notifies with its new head. When the
// connection fails, it reconnects after PollInterval; WaitHead's polling
// covers the commits missed meanwhile.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer s.wg.Done()
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				closeConn(conn)
				conn = nil
				break
			}
			if h, err := strconv.ParseUint(n.Payload, 10, 64); err == nil {
				s.advance(h)
			}
		}
		t := time.NewTimer(s.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		conn, _ = s.listenConn(ctx) // on failure, try again after the interval
		if conn != nil {
			if h, err := s.readHead(ctx, conn); err == nil {
				s.advance(h) // commits notified while disconnected
			}
		}
	}
}

// closeConn closes a connection, waiting at most a second for a broken one.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
