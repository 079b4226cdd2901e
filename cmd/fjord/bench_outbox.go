package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/internal/bench"
)

func newBenchOutboxCmd(a *app) *cobra.Command {
	var (
		cfg    bench.OutboxConfig
		url    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Benchmark guaranteed delivery: outbox → NATS JetStream → inbox",
		Long: `Run outbox scenarios: a producer commits business rows and their
messages in one SQLite transaction (package outbox), a relay publishes
them to NATS JetStream, and a consumer (a pubsub.Router with package inbox)
applies them to a second SQLite database, each batch in one transaction
with its inbox records. Everything runs in this process, on a fresh stream
and fresh databases in a temporary directory (under --dir), removed
afterwards. One result per scenario (--json: one JSON object per line).

  sustained  --messages committed as fast as SQLite takes them, --tx-size
             messages per transaction: messages applied per second, from
             the first commit to the last message applied
  e2e-rate   one message per transaction at --rate messages/s: latency
             from each commit to the commit of its consumer's transaction

By default the broker is an embedded NATS server; --nats URL uses an
external server. --data is not used.`,
		Example: `  fjord bench outbox --json
  fjord bench outbox --scenario e2e-rate --rate 1000 --messages 10000
  fjord bench outbox --scenario sustained --messages 200000 --tx-size 50`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range cfg.Scenarios {
				if !slices.Contains(bench.OutboxScenarios(), name) {
					return usagef(cmd, "invalid --scenario %q: known scenarios are %s", name, strings.Join(bench.OutboxScenarios(), ", "))
				}
			}
			if err := checkCounts(cmd, countFlag{"messages", cfg.Messages}, countFlag{"size", cfg.Size},
				countFlag{"rate", cfg.Rate}, countFlag{"tx-size", cfg.TxSize}); err != nil {
				return err
			}
			var printErr error
			cfg.OnResult = benchResultPrinter(a, asJSON, &printErr)
			err := withBenchNATS(cmd.Context(), url, cfg.Dir, func(open bench.OpenPubSub) error {
				_, err := bench.Outbox(cmd.Context(), open, cfg)
				return err
			})
			if err != nil {
				return fmt.Errorf("bench outbox: %w", err)
			}
			return printErr
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&cfg.Scenarios, "scenario", nil, "scenario to run (repeatable; default all)")
	fl.IntVar(&cfg.Messages, "messages", 0, "messages per scenario (default: sustained 100000, e2e-rate 5000)")
	fl.IntVar(&cfg.Size, "size", 256, "bytes of data per message")
	fl.IntVar(&cfg.Rate, "rate", 1000, "e2e-rate's commit rate, messages per second")
	fl.IntVar(&cfg.TxSize, "tx-size", 10, "messages per producer transaction in sustained")
	fl.StringVar(&url, "nats", "", "external NATS server URL (default: an embedded server)")
	fl.StringVar(&cfg.Dir, "dir", "", "put the temporary databases and the embedded server's store here (default: the system's temporary directory)")
	fl.BoolVar(&asJSON, "json", false, "one JSON object per scenario and line")
	return cmd
}
