package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/internal/bench"
)

func newBenchSQLCmd(a *app) *cobra.Command {
	var (
		scenarios   []string
		events, ops int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Benchmark streaming SQL: filters, windowed aggregation, pull and push queries",
		Long: `Run streaming SQL scenarios, each on a fresh in-memory event store (the
figures are the engine's, not the store's), and print one result per
scenario (--json: one JSON object per line).

  filter-project  a push query from the start over --events JSON events:
                  decode four columns, filter half out, project three expressions
  tumbling-10k    GROUP BY over 10,000 keys in one-minute tumbling windows,
                  COUNT and SUM, EMIT CHANGES, over --events events
  pull-lookup     --ops pull queries by key on a table of 10,000 keys
  push-delivery   --ops events, each appended after the previous one was
                  delivered; latency from append to delivery`,
		Example: `  fjord bench sql --json
  fjord bench sql --scenario tumbling-10k --events 2000000`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(scenarios) == 0 {
				scenarios = bench.SQLScenarios()
			}
			enc := json.NewEncoder(a.stdout)
			for _, sc := range scenarios {
				r, err := bench.SQL(cmd.Context(), sc, events, ops)
				if err != nil {
					return fmt.Errorf("bench sql: %s: %w", sc, err)
				}
				if asJSON {
					if err := enc.Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.stdout, "%-15s %9d %8.3f s %10.0f /s %10.0f /CPU-s  p50 %.4f ms  p99 %.4f ms  %s\n",
					r.Scenario, r.Events, r.Seconds, r.EventsPerSec, r.EventsPerCPUSec, r.P50ms, r.P99ms, r.Op)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&scenarios, "scenario", nil, "scenario to run (repeatable; default all)")
	fl.IntVar(&events, "events", 1000000, "events for filter-project, tumbling-10k and to fill pull-lookup's table")
	fl.IntVar(&ops, "ops", 20000, "operations for pull-lookup and push-delivery")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per scenario and line")
	return cmd
}
