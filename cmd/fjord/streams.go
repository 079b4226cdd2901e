package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
)

type streamsFlags struct {
	category, prefix string
	json             bool
}

// streamJSON is the --json form of a stream: one object per line.
type streamJSON struct {
	Stream   string    `json:"stream"`
	Version  uint64    `json:"version"`
	Position uint64    `json:"position"`
	Updated  time.Time `json:"updated"`
}

func newStreamsCmd(a *app) *cobra.Command {
	var f streamsFlags
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List streams with their version and last update",
		Long: `List the streams that have events, sorted by name, with each one's version,
the position of its last event and when that was committed.

This scans the whole global log ($all), because the store has no stream
listing yet: the time it takes grows with the number of events, and its
memory with the number of streams. --category reads through the category
index instead; --prefix narrows the scan.`,
		Example: `  fjord streams
  fjord streams --category order --json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runStreams(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.category, "category", "", "only streams of this category")
	fl.StringVar(&f.prefix, "prefix", "", "only streams whose name starts with this")
	fl.BoolVar(&f.json, "json", false, "one JSON object per line")
	return cmd
}

func (a *app) runStreams(cmd *cobra.Command, f streamsFlags) error {
	return a.withStore(func(s *eventstore.Store) error {
		streams, err := scanStreams(cmd, s, eventstore.Filter{Category: f.category, StreamPrefix: f.prefix})
		if err != nil {
			return err
		}
		w := bufio.NewWriter(a.stdout)
		enc := json.NewEncoder(w)
		const row = "%-32s  %8s  %10s  %s\n"
		if !f.json {
			fmt.Fprintf(w, row, "STREAM", "VERSION", "POSITION", "UPDATED")
		}
		for _, st := range streams {
			if f.json {
				err = enc.Encode(st)
			} else {
				_, err = fmt.Fprintf(w, row, st.Stream, fmt.Sprint(st.Version), fmt.Sprint(st.Position), formatTime(st.Updated))
			}
			if err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

// scanStreams reads $all through filter and keeps the last event of each
// stream: its version is the stream's version, since versions grow with
// positions.
func scanStreams(cmd *cobra.Command, s *eventstore.Store, filter eventstore.Filter) ([]streamJSON, error) {
	last := make(map[eventstore.StreamID]streamJSON)
	for e, err := range s.ReadAll(cmd.Context(), eventstore.ReadAllOptions{Filter: filter}) {
		if err != nil {
			return nil, err
		}
		last[e.Stream] = streamJSON{Stream: string(e.Stream), Version: uint64(e.Version), Position: uint64(e.Position), Updated: e.Time.UTC()}
	}
	return slices.SortedFunc(maps.Values(last), func(a, b streamJSON) int { return cmp.Compare(a.Stream, b.Stream) }), nil
}
