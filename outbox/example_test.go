package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3"

	"github.com/fjord-data/fjord/outbox"
	"github.com/fjord-data/fjord/pubsub"
)

// printer is a Publisher that prints what it publishes (a *pubsub.Topic in
// a service).
type printer struct{ done func() }

func (p printer) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	for _, m := range msgs {
		fmt.Println(m.Type, m.Subject)
	}
	p.done()
	return nil
}

func Example() {
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite3", "file:"+filepath.Join(dir, "orders.db")+"?_txlock=immediate")
	defer db.Close()
	ctx := context.Background()
	ob, err := outbox.Open(ctx, db, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	db.Exec("CREATE TABLE orders (id TEXT PRIMARY KEY, total INTEGER)")

	// The business write and the message commit together, or neither does.
	placeOrder := func(id string, total int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders VALUES (?, ?)", id, total); err != nil {
			return err
		}
		err = ob.Enqueue(ctx, tx, &pubsub.Message{ID: id, Source: "/shop/orders",
			Type: "shop.order.placed", Subject: "order/" + id, Data: fmt.Appendf(nil, `{"total":%d}`, total)})
		if err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := placeOrder("42", 1250); err != nil {
		fmt.Println(err)
		return
	}

	runCtx, stop := context.WithCancel(ctx)
	relay := outbox.NewRelay(ob, printer{done: stop}, nil)
	relay.Run(runCtx) // until the message is published
	// Output: shop.order.placed order/42
}
