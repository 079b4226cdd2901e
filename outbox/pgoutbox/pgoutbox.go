// Package pgoutbox wakes outbox relays on PostgreSQL commits: Notifier
// listens on the outbox's notification channel, which outbox.Enqueue
// notifies in the writing transaction (PostgreSQL delivers it when, and
// only if, that transaction commits).
//
//	relay := outbox.NewRelay(ob, topic, &outbox.RelayOptions{
//		Notifier: pgoutbox.NewNotifier(db),
//	})
//
// db is a database/sql pool of pgx's stdlib driver (the one the outbox
// uses); the Notifier holds one of its connections while it listens.
package pgoutbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fjord-data/fjord/outbox"
)

// Notifier implements outbox.Notifier with PostgreSQL's LISTEN.
type Notifier struct {
	db *sql.DB
}

var _ outbox.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier that listens on a connection of db, a pool
// of pgx's stdlib driver.
func NewNotifier(db *sql.DB) *Notifier { return &Notifier{db: db} }

// ErrNotPgx is returned by Listen when db's driver is not pgx's stdlib.
var ErrNotPgx = errors.New("pgoutbox: the database/sql pool is not pgx's stdlib driver")

// Listen implements outbox.Notifier: it takes a connection of the pool,
// listens on channel, calls wake once it listens and then on each
// notification, until ctx ends or the connection fails. The connection
// is closed afterwards (not returned to the pool), which ends the LISTEN.
func (n *Notifier) Listen(ctx context.Context, channel string, wake func()) error {
	conn, err := n.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgoutbox: taking a connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("%w (it is %T)", ErrNotPgx, dc)
		}
		pc := c.Conn()
		err := listen(ctx, pc, channel, wake)
		pc.Close(context.Background()) // ends the LISTEN; database/sql drops the closed connection
		return err
	})
}

func listen(ctx context.Context, pc *pgx.Conn, channel string, wake func()) error {
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("pgoutbox: LISTEN %s: %w", channel, err)
	}
	wake()
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("pgoutbox: waiting for notifications on %s: %w", channel, err)
		}
		wake()
	}
}
