package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/projection"
)

func Example() {
	ctx, stop := context.WithCancel(context.Background())
	dir, _ := os.MkdirTemp("", "fjord-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite3", dir+"/read.db") // driver: github.com/ncruces/go-sqlite3/driver
	defer db.Close()
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	p := projection.New(store, db, balances(), nil) // balances: see projection_test.go
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	res, _ := store.Append(ctx, "account-1", eventstore.Any, deposit(5), deposit(7))
	p.WaitFor(ctx, res.Position) // read your writes
	var total int
	db.QueryRow("SELECT total FROM balances WHERE id = 'account-1'").Scan(&total)
	fmt.Println(total)
	stop()
	<-done
	// Output: 12
}
