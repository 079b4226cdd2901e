package projection

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// RunAll runs several projections (in one process, over one or several
// databases) until ctx ends or one of them fails; the first failure stops
// the others, and RunAll returns it.
func RunAll(ctx context.Context, ps ...*Projector) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range ps {
		g.Go(func() error {
			if err := p.Run(ctx); err != nil {
				return fmt.Errorf("projection %s: %w", p.Name(), err)
			}
			return nil
		})
	}
	return g.Wait()
}
