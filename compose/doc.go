// Package compose is API composition for "joins" across services: fan-out
// under one shared deadline with partial results and per-branch errors,
// and a batch loader that collapses single lookups into batched calls.
//
// A Group runs typed branches concurrently on one context; a required
// branch that fails cancels the others, an optional one leaves a partial
// result:
//
//	g := compose.NewGroup(ctx, &compose.Options{Timeout: 300 * time.Millisecond})
//	user := compose.Go(g, "user", func(ctx context.Context) (User, error) { return users.Get(ctx, id) })
//	recs := compose.Optional(g, "recommendations", func(ctx context.Context) ([]Item, error) { return recommender.For(ctx, id) })
//	if err := g.Wait(); err != nil {
//		return err // a *GroupError: a required branch failed
//	}
//	page := Page{User: user.Value(), Recommendations: recs.Value()} // nil recommendations if that branch failed
//
// All is the same for a list of functions of one type.
//
// A Loader turns many Load(ctx, key) calls made within a short window (or
// up to MaxBatch keys) into one BatchFunc call with distinct keys; made per
// request with Cache, it answers repeated keys from memory:
//
//	prices := compose.NewLoader(func(ctx context.Context, skus []string) (map[string]Price, error) {
//		return priceService.Batch(ctx, skus)
//	}, &compose.LoaderOptions{MaxBatch: 50, Cache: true})
//	defer prices.Close()
//	p, err := prices.Load(ctx, "sku-1") // from many goroutines: one call per 50 distinct SKUs
//
// Keys the batch does not return fail with ErrNotFound; a failed batch
// fails its keys with a *BatchError; a KeyErrors fails single keys. The
// batch call runs on a context detached from the callers' cancellation and
// bounded by LoaderOptions.Timeout, so one caller giving up fails nobody
// else.
package compose
