package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/internal/bench"
)

type benchFlags struct {
	scenarios                 []string
	events, streams, size     int
	json, keep, baseline      bool
	dir, postgres, cpuProfile string
}

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks, with JSON output",
		Args:  argsBetween(0, 0, ""),
	}
	cmd.AddCommand(newBenchEventStoreCmd(a), newBenchProjectionCmd(a), newBenchPubSubCmd(a))
	cmd.AddCommand(newBenchSQLCmd(a), newBenchOutboxCmd(a))
	return cmd
}

func newBenchEventStoreCmd(a *app) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "eventstore",
		Short: "Benchmark the event store",
		Long: `Run event store scenarios, each on a fresh store in a new temporary
directory (removed afterwards unless --keep), and print one result per
scenario: a table, or with --json one JSON object per line.

Scenarios (default events in brackets; long ones run only when named):
` + scenarioHelp() + `
Latencies are exact percentiles over every operation (an append, a page of
$all, a stream load, or a delivery). In the table, measurements particular
to a scenario follow its row as name=value, named as in the JSON.
--data is not used.

With --postgres, each scenario runs on the PostgreSQL backend (pgstore) in
a new schema of that database, dropped afterwards. --baseline then runs the
same scenarios again on the classic PostgreSQL design (one transaction per
append, a bigserial position, max(version) checks; see
internal/bench/pgclassic) on the same server, reported as
baseline-<scenario>.`,
		Example: `  fjord bench eventstore --scenario single-64w
  fjord bench eventstore --postgres postgres://postgres@127.0.0.1/test --scenario single-64w --baseline
  fjord bench eventstore --scenario read-all --events 100000 --json
  fjord bench eventstore --scenario scale --json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBench(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.scenarios, "scenario", nil, "scenario to run (repeatable; default all but the long ones)")
	fl.IntVar(&f.events, "events", 0, "events per scenario (default: the scenario's own)")
	fl.IntVar(&f.streams, "streams", 0, "streams the events spread over (default: the scenario's own, 100000 but for scale)")
	fl.IntVar(&f.size, "event-size", 256, "bytes of data per event")
	fl.BoolVar(&f.json, "json", false, "one JSON object per scenario and line")
	fl.BoolVar(&f.keep, "keep", false, "keep each scenario's data directory")
	fl.StringVar(&f.postgres, "postgres", "", "run on PostgreSQL (pgstore) at this connection string, a new schema per scenario")
	fl.BoolVar(&f.baseline, "baseline", false, "with --postgres, also run each scenario on the classic design, as baseline-<scenario>")
	fl.StringVar(&f.dir, "dir", "", "create the scenario directories here (default: the system's temporary directory)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

var scenarioDescriptions = map[string]string{
	"single-64w":        "64 concurrent writers, one event per append, each waiting for its ack",
	"batch100-8w":       "8 concurrent writers, 100 events per append",
	"single-1w":         "one writer, one event per append: append latency",
	"read-all":          "pre-populate, then read $all from the start in pages",
	"read-stream":       "pre-populate streams of 100 events, then load random streams",
	"subscribe-latency": "append → live subscriber delivery latency, one writer",
	"scale":             "append rate, empty vs full (1000000 streams); reopen time; memory. Long",
}

func scenarioHelp() string {
	var b strings.Builder
	for _, name := range bench.Scenarios() {
		fmt.Fprintf(&b, "  %-18s %s [%d]\n", name, scenarioDescriptions[name], bench.DefaultEvents(name))
	}
	return b.String()
}

// tableFields are the JSON fields of a result that the table does not list
// as name=value: its columns, and a few not worth a line (the kept
// directory goes to stderr).
var tableFields = map[string]bool{
	"scenario": true, "events": true, "ops": true, "seconds": true, "events_per_sec": true,
	"p50_ms": true, "p99_ms": true, "p999_ms": true, "op": true, "writers": true, "max_ms": true, "dir": true,
}

// extraFields returns the JSON fields of r beyond the table's, in their
// JSON order, as "name=value": the measurements particular to a scenario,
// which JSON omits when they are zero.
func extraFields(r bench.Result) ([]string, error) {
	line, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out []string
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			return nil, err
		}
		value, err := dec.Token() // a result has only scalar fields
		if err != nil {
			return nil, err
		}
		if !tableFields[name.(string)] {
			out = append(out, fmt.Sprintf("%s=%s", name, formatValue(value)))
		}
	}
	return out, nil
}

// formatValue prints whole numbers as they are and others to 3 decimals.
func formatValue(v json.Token) string {
	n, ok := v.(json.Number)
	if !ok {
		return fmt.Sprint(v)
	}
	if _, err := n.Int64(); err == nil {
		return n.String()
	}
	f, err := n.Float64()
	if err != nil {
		return n.String()
	}
	return strconv.FormatFloat(f, 'f', 3, 64)
}

func (a *app) runBench(cmd *cobra.Command, f benchFlags) error {
	for _, name := range f.scenarios {
		if bench.DefaultEvents(name) == 0 {
			return usagef(cmd, "invalid --scenario %q: known scenarios are %s", name, strings.Join(bench.Scenarios(), ", "))
		}
	}
	for _, n := range []struct {
		flag  string
		value int
		least int
	}{{"events", f.events, 0}, {"streams", f.streams, 1}, {"event-size", f.size, 1}} {
		if cmd.Flags().Changed(n.flag) && n.value < n.least { // defaults are valid
			return usagef(cmd, "invalid --%s %d: must be at least %d", n.flag, n.value, n.least)
		}
	}
	const row = "%-28s %10s %8s %9s %12s %9s %9s %9s  %s\n"
	enc := json.NewEncoder(a.stdout)
	if !f.json {
		fmt.Fprintf(a.stdout, row, "SCENARIO", "EVENTS", "OPS", "SECONDS", "EVENTS/S", "P50 MS", "P99 MS", "P99.9 MS", "OP")
	}
	if f.baseline && f.postgres == "" {
		return usagef(cmd, "--baseline needs --postgres")
	}
	if f.cpuProfile != "" {
		out, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("bench eventstore: %w", err)
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return fmt.Errorf("bench eventstore: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var printErr error
	onResult := func(r bench.Result) {
		if f.json {
			printErr = enc.Encode(r)
			return
		}
		_, printErr = fmt.Fprintf(a.stdout, row, r.Scenario, fmt.Sprint(r.Events), fmt.Sprint(r.Ops),
			fmt.Sprintf("%.3f", r.Seconds), fmt.Sprintf("%.0f", r.EventsPerSec),
			fmt.Sprintf("%.3f", r.P50ms), fmt.Sprintf("%.3f", r.P99ms), fmt.Sprintf("%.3f", r.P999ms), r.Op)
		extra, err := extraFields(r)
		printErr = errors.Join(printErr, err)
		if len(extra) > 0 {
			_, err = fmt.Fprintf(a.stdout, "  %s\n", strings.Join(extra, " "))
			printErr = errors.Join(printErr, err)
		}
		if r.Dir != "" {
			fmt.Fprintf(a.stderr, "fjord: kept %s\n", r.Dir)
		}
	}
	cfg := bench.Config{Scenarios: f.scenarios, Events: f.events, Streams: f.streams, EventSize: f.size, Dir: f.dir, Keep: f.keep,
		OnResult: onResult}
	if f.postgres == "" {
		open := a.open
		if a.serverURL != "" {
			// Every scenario works on the one served store, which is not
			// empty after the first: compare runs of one scenario at a time.
			open = func(string) (*eventstore.Store, error) { return a.openStore() }
		}
		if _, err := bench.EventStore(cmd.Context(), open, cfg); err != nil {
			return fmt.Errorf("bench eventstore: %w", err)
		}
		return printErr
	}
	for _, baseline := range []bool{false, true} {
		if baseline && !f.baseline {
			break
		}
		if err := benchPostgres(cmd.Context(), f.postgres, baseline, cfg); err != nil {
			return fmt.Errorf("bench eventstore: %w", err)
		}
	}
	return printErr
}

// benchPostgres runs the scenarios of cfg on PostgreSQL, on pgstore or the
// classic design (baseline, whose results are named baseline-<scenario>),
// each in a schema of its own that is dropped when the scenario ends.
func benchPostgres(ctx context.Context, dsn string, baseline bool, cfg bench.Config) (err error) {
	pg, err := newPgBench(ctx, dsn, baseline)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pg.close()) }()
	onResult := cfg.OnResult
	cfg.OnResult = func(r bench.Result) {
		err = errors.Join(err, pg.dropSchemas()) // the scenario's store is closed
		if baseline {
			r.Scenario = "baseline-" + r.Scenario
		}
		onResult(r)
	}
	_, runErr := bench.EventStore(ctx, pg.open, cfg)
	return errors.Join(runErr, err)
}

func newBenchProjectionCmd(a *app) *cobra.Command {
	var (
		scenarios              []string
		events, streams, batch int
		asJSON                 bool
		dir                    string
	)
	cmd := &cobra.Command{
		Use:   "projection",
		Short: "Benchmark projections into SQLite, rebuilds and replica bootstrap",
		Long: `Run projection scenarios, each on a fresh store and a fresh SQLite read
model in a new temporary directory, and print one result per scenario
(--json: one JSON object per line).

  project            append --events events, then project them from the start
  rebuild            project them, then time a rebuild into shadow tables and the swap
  replica-bootstrap  bootstrap a replica from a snapshot of --events rows`,
		Example: `  fjord bench projection --events 1000000 --json
  fjord bench projection --scenario rebuild --events 1000000`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(scenarios) == 0 {
				scenarios = bench.ProjectionScenarios()
			}
			enc := json.NewEncoder(a.stdout)
			for _, sc := range scenarios {
				r, err := bench.Projection(cmd.Context(), a.open, dir, sc, events, streams, batch)
				if err != nil {
					return fmt.Errorf("bench projection: %s: %w", sc, err)
				}
				if asJSON {
					if err := enc.Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.stdout, "%-20s %10d events %8.3f s %12.0f events/s  %s\n", r.Scenario, r.Events, r.Seconds, r.EventsPerSec, r.Op)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&scenarios, "scenario", nil, "scenario to run (repeatable; default all)")
	fl.IntVar(&events, "events", 100_000, "events (rows for replica-bootstrap)")
	fl.IntVar(&streams, "streams", 1000, "streams the events spread over")
	fl.IntVar(&batch, "batch", 1000, "events per projection transaction")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per scenario and line")
	fl.StringVar(&dir, "dir", "", "create the scenario directories here (default: the system's temporary directory)")
	return cmd
}
