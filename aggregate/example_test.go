package aggregate_test

import (
	"context"
	"fmt"

	"github.com/fjord-data/fjord/aggregate"
	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

type counter struct{ N int }

func (c *counter) Apply(eventstore.RecordedEvent) { c.N++ }

func Example() {
	store := eventstore.New(memstore.New(), nil)
	defer store.Close()
	counters := aggregate.New(store, aggregate.Definition[*counter]{
		Category: "counter",
		Initial:  func() *counter { return &counter{} },
		Evolve:   aggregate.EvolveByApply[*counter],
	}, &aggregate.Options{SnapshotEvery: 100})
	for range 3 {
		res, _ := counters.Handle(context.Background(), "a", func(c *counter) ([]eventstore.Event, error) {
			return []eventstore.Event{{Type: "Incremented", Data: []byte(`{}`)}}, nil
		})
		fmt.Println(res.State.N, res.Version)
	}
	// Output:
	// 1 1
	// 2 2
	// 3 3
}
