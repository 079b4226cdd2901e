package pgoutbox_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/internal/sqltest"
	"github.com/fjord-data/fjord/outbox/pgoutbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestListen: Listen wakes once it listens, then once per committed
// notification, and never for a rolled-back one; it returns ctx's error.
func TestListen(t *testing.T) {
	db := sqltest.Postgres(t)
	channel := "fjord_outbox_pgoutbox_test"
	wakes := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- pgoutbox.NewNotifier(db).Listen(ctx, channel, func() { wakes <- struct{}{} })
	}()
	<-wakes // listening
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT pg_notify($1, '')", channel); err != nil {
		t.Fatal(err)
	}
	tx.Rollback()
	if _, err := db.Exec("SELECT pg_notify($1, 'committed')", channel); err != nil {
		t.Fatal(err)
	}
	<-wakes // the committed one
	select {
	case <-wakes:
		t.Error("woken more than once: the rolled-back notification was delivered")
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Listen returned %v, want context.Canceled", err)
	}
}

func TestListenNotPgx(t *testing.T) {
	err := pgoutbox.NewNotifier(sqltest.SQLite(t)).Listen(context.Background(), "c", func() {})
	if !errors.Is(err, pgoutbox.ErrNotPgx) {
		t.Errorf("got %v, want ErrNotPgx", err)
	}
}
