package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/internal/bench"
)

// The helpers that the benchmarks over NATS (bench pubsub, bench outbox)
// share.

// countFlag is an integer flag that must be at least 1 when given.
type countFlag struct {
	flag  string
	value int
}

// checkCounts returns a usage error for a count flag below 1.
func checkCounts(cmd *cobra.Command, counts ...countFlag) error {
	for _, n := range counts {
		if n.value < 0 || cmd.Flags().Changed(n.flag) && n.value == 0 {
			return usagef(cmd, "invalid --%s %d: must be at least 1", n.flag, n.value)
		}
	}
	return nil
}

// benchResultPrinter prints messaging results as a table row or, with asJSON,
// a JSON line; *errp collects the write errors.
func benchResultPrinter(a *app, asJSON bool, errp *error) func(bench.Result) {
	enc := json.NewEncoder(a.stdout)
	return func(r bench.Result) {
		if asJSON {
			*errp = errors.Join(*errp, enc.Encode(r))
			return
		}
		_, err := fmt.Fprintf(a.stdout, "%-9s %8d msgs %8.3f s %10.0f msg/s  p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms  %s\n",
			r.Scenario, r.Events, r.Seconds, r.EventsPerSec, r.P50ms, r.P99ms, r.MaxMs, r.Op)
		*errp = errors.Join(*errp, err)
	}
}

// withBenchNATS connects to the NATS server at url, or starts an embedded
// one with its store in a temporary directory under dir, and runs f with
// a way to open a fresh destination per scenario.
func withBenchNATS(ctx context.Context, url, dir string, f func(open bench.OpenPubSub) error) (err error) {
	var nc *nats.Conn
	if url != "" {
		nc, err = nats.Connect(url)
		if err != nil {
			return fmt.Errorf("connecting to NATS at %s: %w", url, err)
		}
	} else {
		var srv *benchServer
		if srv, err = startBenchServer(ctx, dir); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.Close()) }() // after nc.Close
		if nc, err = srv.Connect(); err != nil {
			return err
		}
	}
	defer nc.Close()
	var deletes []func() error
	defer func() { // before nc.Close
		for _, d := range deletes {
			err = errors.Join(err, d())
		}
	}()
	later := func(d func() error) { deletes = append(deletes, d) }
	return f(func(ctx context.Context, scenario string) (*bench.PubSubDestination, error) {
		return openBenchDestination(ctx, nc, scenario, later)
	})
}
