package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/internal/bench"
)

func newBenchSQLCmd(a *app) *cobra.Command {
	var (
		scenarios  []string
		cfg        bench.SQLConfig
		asJSON     bool
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Benchmark streaming SQL: filters, windowed aggregation, pull and push queries",
		Long: `Run streaming SQL scenarios, each on a fresh in-memory event store (the
figures are the engine's, not the store's), and print one result per
scenario (--json: one JSON object per line, with each scenario's extra figures).

  filter-project        a push query from the start over --events JSON events
                        (default 1,000,000): decode four columns, filter half
                        out, project three expressions
  tumbling-10k          GROUP BY over 10,000 keys in one-minute tumbling windows,
                        COUNT and SUM, EMIT CHANGES, over --events events
  pull-lookup           --ops pull queries by key on a table of 10,000 keys
  push-delivery         --ops events, each appended after the previous one was
                        delivered; latency from append to delivery
  push-fanout           one push query shared by --subscribers iterators, over
                        --events events (default 200,000) appended while the
                        clock runs, --pass percent of them passing its filter;
                        the rate against the same with one subscriber (ratio;
                        best of three rounds each)
  persistent-memory     a persistent GROUP BY table with Pebble state over 100
                        keys (--events events, default 200,000): the heap it
                        adds beyond its state; then over --keys keys (one event
                        a key): the heap of its state, and its Pebble directory
  persistent-throughput a persistent GROUP BY table over 10,000 keys catching up
                        with --events events (default 500,000), committing state
                        and position to Pebble per batch, against in-memory state
                        (best of three rounds each)`,
		Example: `  fjord bench sql --json
  fjord bench sql --scenario tumbling-10k --events 2000000
  fjord bench sql --scenario push-fanout --subscribers 1000 --pass 1 --json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(scenarios) == 0 {
				scenarios = bench.SQLScenarios()
			}
			if cpuProfile != "" {
				out, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("bench sql: %w", err)
				}
				defer out.Close()
				if err := pprof.StartCPUProfile(out); err != nil {
					return fmt.Errorf("bench sql: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			enc := json.NewEncoder(a.stdout)
			for _, sc := range scenarios {
				r, err := bench.SQL(cmd.Context(), sc, cfg)
				if err != nil {
					return fmt.Errorf("bench sql: %s: %w", sc, err)
				}
				if asJSON {
					if err := enc.Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.stdout, "%-21s %9d %8.3f s %10.0f /s %10.0f /CPU-s  p50 %.4f ms  p99 %.4f ms  %s\n",
					r.Scenario, r.Events, r.Seconds, r.EventsPerSec, r.EventsPerCPUSec, r.P50ms, r.P99ms, r.Op)
				switch {
				case r.Subscribers > 0:
					fmt.Fprintf(a.stdout, "%-21s %d subscribers, %d changes each; one subscriber %.0f /s (%.0f /CPU-s); ratio %.3f; query busy %.3f s (one subscriber %.3f s); %.0f CPU-ns per extra delivery\n",
						"", r.Subscribers, r.DeliveredPerSubscriber, r.BaselineEventsPerSec, r.BaselineEventsPerCPUSec, r.Ratio,
						r.QueryBusySeconds, r.BaselineQueryBusySeconds, r.ExtraCPUNsPerDelivery)
				case r.Keys > 0:
					fmt.Fprintf(a.stdout, "%-21s %d keys: heap beyond state %.1f MiB (RSS %.1f); %d keys: state heap %.1f MiB (%.0f B/key, RSS %.1f), Pebble %.1f MiB on disk\n",
						"", r.SmallKeys, r.OverheadHeapMB, r.OverheadRSSMB, r.Keys, r.StateHeapMB, r.StateBytesPerKey, r.StateRSSMB, r.StateDiskMB)
				case r.Ratio > 0:
					fmt.Fprintf(a.stdout, "%-21s in-memory state %.0f /s (%.0f /CPU-s); ratio %.3f\n",
						"", r.BaselineEventsPerSec, r.BaselineEventsPerCPUSec, r.Ratio)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&scenarios, "scenario", nil, "scenario to run (repeatable; default all)")
	fl.IntVar(&cfg.Events, "events", 0, "events per scenario (0: each scenario's default)")
	fl.IntVar(&cfg.Ops, "ops", 20000, "operations for pull-lookup and push-delivery")
	fl.IntVar(&cfg.Subscribers, "subscribers", 1000, "push-fanout's subscribers")
	fl.Float64Var(&cfg.PassPercent, "pass", 1, "percent of events push-fanout's query passes (0.1-100)")
	fl.IntVar(&cfg.Keys, "keys", 1000000, "persistent-memory's large table keys")
	fl.StringVar(&cfg.Dir, "dir", "", "where persistent scenarios make their Pebble directories (default the temp dir)")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per scenario and line")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
