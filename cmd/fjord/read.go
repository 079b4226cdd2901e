package main

import (
	"bufio"
	"errors"
	"fmt"
	"iter"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
)

// allStream is the name of the global log on the command line.
const allStream = "$all"

type readFlags struct {
	from      uint64
	backwards bool
	limit     int
	filter    filterFlags
	json      bool
}

// filterFlags select events of $all.
type filterFlags struct {
	category, prefix string
	types            []string
}

func (f *filterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.category, "category", "", "only streams of this category (the part of the name before the first '-')")
	fl.StringArrayVar(&f.types, "type", nil, "only events of this type (repeatable)")
	fl.StringVar(&f.prefix, "prefix", "", "only streams whose name starts with this")
}

func (f *filterFlags) filter() eventstore.Filter {
	return eventstore.Filter{Category: f.category, EventTypes: f.types, StreamPrefix: f.prefix}
}

// set returns the name of a filter flag that was given, or "".
func (f *filterFlags) set(cmd *cobra.Command) string {
	for _, name := range []string{"category", "type", "prefix"} {
		if cmd.Flags().Changed(name) {
			return name
		}
	}
	return ""
}

func newReadCmd(a *app) *cobra.Command {
	var f readFlags
	cmd := &cobra.Command{
		Use:   "read STREAM|$all",
		Short: "Read the events of a stream or of the global log",
		Long: `Read the events of one stream in version order, or of the global log ($all)
in position order, and print them as an aligned table or, with --json, as one
JSON object per line. Quote $all in the shell: '$all'.

--from is the first version (of a stream) or position (of $all) to print;
backwards, 0 means the last. $all can be narrowed with --category, --type
and --prefix.`,
		Example: `  fjord read order-42
  fjord read '$all' --category order --type OrderPlaced --limit 10 --json
  fjord read order-42 --backwards --limit 1`,
		Args: argsBetween(1, 1, "STREAM|$all"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRead(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.from, "from", 0, "first version or position to print (0: the first, or the last backwards)")
	fl.BoolVar(&f.backwards, "backwards", false, "newest first")
	fl.IntVar(&f.limit, "limit", 0, "print at most this many events (0: no limit)")
	fl.BoolVar(&f.json, "json", false, "one JSON object per line")
	f.filter.add(cmd)
	return cmd
}

func (a *app) runRead(cmd *cobra.Command, stream string, f readFlags) error {
	if f.limit < 0 {
		return usagef(cmd, "invalid --limit %d: must not be negative", f.limit)
	}
	if name := f.filter.set(cmd); name != "" && stream != allStream {
		return usagef(cmd, "--%s applies to $all only, not to a stream", name)
	}
	return a.withStore(func(s *eventstore.Store) error {
		ctx := cmd.Context()
		var events iter.Seq2[eventstore.RecordedEvent, error]
		if stream == allStream {
			events = s.ReadAll(ctx, eventstore.ReadAllOptions{From: eventstore.Position(f.from), Backwards: f.backwards,
				Limit: f.limit, Filter: f.filter.filter()})
		} else {
			events = s.ReadStream(ctx, eventstore.StreamID(stream), eventstore.ReadStreamOptions{
				From: eventstore.Version(f.from), Backwards: f.backwards, Limit: f.limit})
		}
		w := bufio.NewWriter(a.stdout)
		p := newEventPrinter(w, f.json)
		if err := p.header(); err != nil {
			return err
		}
		n := 0
		for e, err := range events {
			if err != nil {
				w.Flush()
				return err
			}
			if err := p.print(e); err != nil {
				return err
			}
			n++
		}
		if n == 0 && stream != allStream {
			if _, err := s.StreamInfo(ctx, eventstore.StreamID(stream)); errors.Is(err, eventstore.ErrStreamNotFound) {
				fmt.Fprintf(a.stderr, "fjord: stream %s has no events\n", stream)
			}
		}
		return w.Flush()
	})
}
