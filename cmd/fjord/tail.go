package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
)

type tailFlags struct {
	stream string
	from   string
	filter filterFlags
	json   bool
}

func newTailCmd(a *app) *cobra.Command {
	var f tailFlags
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print events as they are committed, until interrupted",
		Long: `Follow a subscription and print events as they are committed, until Ctrl-C.
Without --stream it follows the global log ($all), optionally narrowed by
--category, --type and --prefix.

--from says where to begin: "end" (the default: only new events), "start"
(everything, then new events), or a number: the first position of $all, or
the first version of --stream, to print. Events are delivered in commit
order with no gap and no duplicate.`,
		Example: `  fjord tail
  fjord tail --category order --from start --json
  fjord tail --stream order-42 --from 3`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runTail(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stream, "stream", "", "follow this stream instead of $all")
	fl.StringVar(&f.from, "from", "end", "start, end, or the first position (version with --stream) to print")
	fl.BoolVar(&f.json, "json", false, "one JSON object per line")
	f.filter.add(cmd)
	return cmd
}

func (a *app) runTail(cmd *cobra.Command, f tailFlags) error {
	opts, err := tailOptions(f)
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	if name := f.filter.set(cmd); name != "" && f.stream != "" {
		return usagef(cmd, "--%s applies to $all only, not with --stream", name)
	}
	return a.withStore(func(s *eventstore.Store) error {
		ctx := cmd.Context()
		w := bufio.NewWriter(a.stdout)
		p := newEventPrinter(w, f.json)
		if err := p.header(); err != nil {
			return err
		}
		live := false
		for d, err := range s.Subscribe(ctx, opts) {
			if err != nil {
				w.Flush()
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					return nil // interrupted: the normal way to stop
				}
				return err
			}
			switch d.Kind {
			case eventstore.DeliveredEvent:
				if err := p.print(d.Event); err != nil {
					return err
				}
				if live {
					err = w.Flush()
				}
			case eventstore.DeliveredCaughtUp:
				live = true
				err = w.Flush()
				fmt.Fprintf(a.stderr, "fjord: caught up at position %d; waiting for new events (Ctrl-C to stop)\n", d.Position)
			}
			if err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

// tailOptions turns the flags into subscription options.
func tailOptions(f tailFlags) (eventstore.SubscribeOptions, error) {
	opts := eventstore.SubscribeOptions{Stream: eventstore.StreamID(f.stream), Filter: f.filter.filter()}
	var n uint64 // events after this are printed
	switch f.from {
	case "start":
	case "end":
		n = ^uint64(0)
	default:
		v, err := strconv.ParseUint(f.from, 10, 64)
		if err != nil {
			return opts, fmt.Errorf("invalid --from %q: want start, end or a number", f.from)
		}
		n = max(v, 1) - 1
	}
	if f.stream != "" {
		opts.AfterVersion = eventstore.Version(n)
	} else {
		opts.From = eventstore.Position(n)
	}
	return opts, nil
}
