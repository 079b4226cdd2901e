package compose_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fjord-data/fjord/compose"
)

func ExampleGroup() {
	ctx := context.Background()
	g := compose.NewGroup(ctx, &compose.Options{Timeout: time.Second})
	user := compose.Go(g, "user", func(ctx context.Context) (string, error) { return "ada", nil })
	recs := compose.Optional(g, "recommendations", func(ctx context.Context) ([]string, error) {
		return nil, errors.New("recommender unavailable")
	})
	if err := g.Wait(); err != nil {
		fmt.Println("failed:", err)
		return
	}
	fmt.Println(user.Value(), recs.Value() == nil)
	for _, e := range g.Errors() {
		fmt.Println(e)
	}
	// Output:
	// ada true
	// compose: optional branch "recommendations": recommender unavailable
}

func ExampleLoader() {
	calls := 0
	l := compose.NewLoader(func(ctx context.Context, ids []int) (map[int]string, error) {
		calls++
		m := make(map[int]string, len(ids))
		for _, id := range ids {
			if id != 3 {
				m[id] = fmt.Sprint("customer-", id)
			}
		}
		return m, nil
	}, &compose.LoaderOptions{MaxBatch: 10})
	defer l.Close()
	names, errs := l.LoadMany(context.Background(), []int{1, 2, 1, 3})
	fmt.Println(names, calls)
	fmt.Println(errors.Is(errs[3], compose.ErrNotFound))
	// Output:
	// [customer-1 customer-2 customer-1 ] 1
	// true
}
