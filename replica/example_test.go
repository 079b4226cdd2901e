package replica_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/replica"
)

func Example() {
	ctx := context.Background()
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	store.Append(ctx, "customer-42", eventstore.Any, eventstore.Event{Type: "CustomerChanged", Data: []byte(`{"name":"Ada"}`)})
	dir, _ := os.MkdirTemp("", "fjord-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite3", dir+"/replica.db") // driver: github.com/ncruces/go-sqlite3/driver
	defer db.Close()
	customers := replica.New(db, "customers", &replica.CategorySource{Store: store, Category: "customer"}, nil)
	snap, _ := replica.CategorySnapshot(ctx, store, "customer", nil)
	customers.Bootstrap(ctx, snap) // then customers.Run(ctx) catches up from snap.Position
	row, ok, _ := customers.Get(ctx, "42")
	fmt.Println(ok, row.Version, string(row.Data))
	// Output: true 1 {"name":"Ada"}
}
