package inbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3"

	"github.com/fjord-data/fjord/inbox"
	"github.com/fjord-data/fjord/pubsub"
)

func Example() {
	dir, _ := os.MkdirTemp("", "inbox-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite3", "file:"+filepath.Join(dir, "billing.db")+"?_txlock=immediate")
	defer db.Close()
	ctx := context.Background()
	in, err := inbox.Open(ctx, db, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer in.Close()
	db.Exec("CREATE TABLE invoices (order_id TEXT PRIMARY KEY, paid INTEGER)")
	db.Exec("INSERT INTO invoices VALUES ('order/42', 0)")

	m := &pubsub.Message{ID: "7", Source: "/shop/payments", Type: "shop.payment.received", Subject: "order/42"}
	for delivery := 1; delivery <= 2; delivery++ { // the broker delivers it twice
		applied, err := in.Handle(ctx, "billing", m, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE invoices SET paid = paid + 1 WHERE order_id = ?", m.Subject)
			return err
		})
		fmt.Println("delivery", delivery, "applied:", applied, err)
	}
	var paid int
	db.QueryRow("SELECT paid FROM invoices").Scan(&paid)
	fmt.Println("paid", paid, "time(s)")
	// Output:
	// delivery 1 applied: true <nil>
	// delivery 2 applied: false <nil>
	// paid 1 time(s)
}
