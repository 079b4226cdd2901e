package replica_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/mempubsub"
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

// A replica fed by the owner's topic: the owner publishes each change with
// its version; the replica's Router applies them, in any order, once or
// several times.
func Example_messages() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "fjord-example-")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite3", dir+"/replica.db")
	defer db.Close()

	b := mempubsub.New(nil)
	b.CreateSubscription("crm.customers", "billing")
	codec := replica.MessageCodec{Source: "/crm", ChangeType: "crm.customer.changed",
		DeleteType: "crm.customer.deleted", SubjectPrefix: "customer/", ContentType: "application/json"}

	// The owner: version 2 goes out before version 1.
	topic := pubsub.NewTopic(b.Topic("crm.customers"), nil)
	defer topic.Close()
	topic.Publish(ctx,
		codec.Message(replica.Change{Key: "42", Version: 2, Data: []byte(`{"name":"Ada Lovelace"}`)}),
		codec.Message(replica.Change{Key: "42", Version: 1, Data: []byte(`{"name":"Ada"}`)}),
	)

	// The replica.
	customers := replica.New(db, "customers", nil, nil)
	customers.Init(ctx)
	handled := make(chan struct{}, 2)
	sub := b.Subscription("crm.customers", "billing")
	defer sub.Close()
	router := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "billing", Topic: "crm.customers",
		Hooks: pubsub.RouterHooks{OnHandled: func(pubsub.HandleInfo) { handled <- struct{}{} }}})
	customers.Route(router, codec, nil)
	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(ctx) }()
	<-handled
	<-handled
	cancel()
	<-stopped

	row, ok, _ := customers.Get(context.Background(), "42")
	fmt.Println(ok, row.Version, string(row.Data))
	// Output: true 2 {"name":"Ada Lovelace"}
}
