package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
)

// parkedFlags say which park destination to read and which of its
// messages to consider.
type parkedFlags struct {
	topic    string        // --topic: the topic the messages were consumed from
	park     string        // --park: the park destination, when not ParkTopic(topic)
	consumer string        // --consumer: only messages this consumer parked
	source   string        // --source: only messages of this source
	reader   string        // --reader: the durable subscription on the park destination
	wait     time.Duration // --wait: how long to wait for more parked messages
	limit    int           // --limit: the most messages to hold at once
}

func (f *parkedFlags) destination() string {
	if f.park != "" {
		return f.park
	}
	return pubsub.ParkTopic(f.topic)
}

func newPubSubParkedCmd(a *app, pf *pubsubFlags) *cobra.Command {
	var f parkedFlags
	cmd := &cobra.Command{
		Use:   "parked",
		Short: "List, inspect, requeue and discard parked (dead-lettered) messages",
		Long: `Consumers park the messages they cannot handle (retries exhausted, poison,
not a CloudEvent, no handler) on the park destination of the topic they
consume, <topic>.parked unless --park names another, with the reason, the
attempts and the failure times. These commands read it through the durable
subscription --reader (default ` + pubsub.ParkReader + `): requeue publishes a
message back to the topic it was consumed from, discard drops it for good.
Both remove it from the park destination as --reader sees it.

A message is named by its id (--source when ids of several sources
collide). The listing ends once no further parked message has arrived for
--wait.`,
		Args: argsBetween(0, 0, ""),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if f.topic == "" && f.park == "" {
				return usagef(cmd, "missing --topic (or --park)")
			}
			if f.limit < 1 {
				return usagef(cmd, "invalid --limit %d: must be at least 1", f.limit)
			}
			return nil
		},
	}
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.topic, "topic", "", "the topic the parked messages were consumed from")
	fl.StringVar(&f.park, "park", "", "the park destination (default <topic>.parked)")
	fl.StringVar(&f.consumer, "consumer", "", "only messages this consumer parked")
	fl.StringVar(&f.source, "source", "", "only messages of this source")
	fl.StringVar(&f.reader, "reader", pubsub.ParkReader, "durable subscription that reads the park destination")
	fl.DurationVar(&f.wait, "wait", time.Second, "how long to wait for more parked messages before the listing ends")
	fl.IntVar(&f.limit, "limit", 1000, "the most parked messages to read")
	cmd.AddCommand(newParkedListCmd(a, pf, &f), newParkedShowCmd(a, pf, &f),
		newParkedRequeueCmd(a, pf, &f), newParkedDiscardCmd(a, pf, &f))
	return cmd
}

func newParkedListCmd(a *app, pf *pubsubFlags, f *parkedFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List parked messages",
		Example: `  fjord pubsub parked list --topic orders
  fjord pubsub parked list --topic orders --consumer billing --json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withParked(cmd.Context(), pf, f, func(s *parkedSet) error {
				return a.printParkedList(s, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per message and line")
	return cmd
}

func newParkedShowCmd(a *app, pf *pubsubFlags, f *parkedFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show ID...",
		Short:   "Show parked messages in full: envelope, extensions, park details and data",
		Example: `  fjord pubsub parked show --topic orders o-42-placed`,
		Args:    argsBetween(1, 1<<20, "ID..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withParked(cmd.Context(), pf, f, func(s *parkedSet) error {
				pms, err := s.pick(args, false)
				if err != nil {
					return err
				}
				w := bufio.NewWriter(a.stdout)
				for i, pm := range pms {
					if asJSON {
						err = json.NewEncoder(w).Encode(parkedToJSON(pm, true))
					} else {
						if i > 0 {
							fmt.Fprintln(w)
						}
						err = writeParked(w, pm)
					}
					if err != nil {
						return err
					}
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per message and line")
	return cmd
}

func newParkedRequeueCmd(a *app, pf *pubsubFlags, f *parkedFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "requeue ID...|--all",
		Short: "Publish parked messages back to the topic they were consumed from",
		Long: `Publish each parked message, as it was first published, back to the topic
it was consumed from (its fjordparktopic extension, else --topic), then
remove it from the park destination. The copy carries a requeue count in
the fjordrequeue extension, so brokers that deduplicate on source and id do
not drop it as a repeat.`,
		Example: `  fjord pubsub parked requeue --topic orders o-42-placed o-43-placed
  fjord pubsub parked requeue --topic orders --consumer billing --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := idsOrAll(cmd, args, all); err != nil {
				return err
			}
			ctx := cmd.Context()
			return a.withParked(ctx, pf, f, func(s *parkedSet) error {
				pms, err := s.pick(args, all)
				if err != nil || a.noneParked(s, pms) {
					return err
				}
				return a.requeue(ctx, s, pms)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every parked message (of --consumer and --source, when given)")
	return cmd
}

func newParkedDiscardCmd(a *app, pf *pubsubFlags, f *parkedFlags) *cobra.Command {
	var all, yes bool
	cmd := &cobra.Command{
		Use:   "discard ID...|--all",
		Short: "Remove parked messages for good",
		Long: `Remove parked messages from the park destination for good. It asks for
confirmation on standard input unless --yes is given.`,
		Example: `  fjord pubsub parked discard --topic orders o-42-placed
  fjord pubsub parked discard --topic orders --all --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := idsOrAll(cmd, args, all); err != nil {
				return err
			}
			ctx := cmd.Context()
			return a.withParked(ctx, pf, f, func(s *parkedSet) error {
				pms, err := s.pick(args, all)
				if err != nil || a.noneParked(s, pms) {
					return err
				}
				if !yes && !a.confirm(fmt.Sprintf("Discard %d parked %s from %s for good (%s)?", len(pms), plural(len(pms), "message"), s.dest, idList(pms))) {
					return errors.New("nothing discarded: not confirmed (give --yes to skip the question)")
				}
				for _, pm := range pms {
					if err := s.p.Discard(ctx, pm); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "discarded %s\n", pmID(pm))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every parked message (of --consumer and --source, when given)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// noneParked says so on stderr when pms is empty (--all found nothing).
func (a *app) noneParked(s *parkedSet, pms []*pubsub.ParkedMessage) bool {
	if len(pms) > 0 {
		return false
	}
	fmt.Fprintf(a.stderr, "fjord: no parked messages in %s%s\n", s.dest, s.filtersNote())
	return true
}

func idsOrAll(cmd *cobra.Command, args []string, all bool) error {
	switch {
	case all && len(args) > 0:
		return usagef(cmd, "give message IDs or --all, not both")
	case !all && len(args) == 0:
		return usagef(cmd, "missing ID... (or --all)")
	}
	return nil
}

// parkedSet is what a parked command read from the park destination:
// messages held until the command ends, which then gives back those it did
// not requeue or discard.
type parkedSet struct {
	b     broker
	p     *pubsub.Parked
	f     *parkedFlags
	dest  string
	msgs  []*pubsub.ParkedMessage // those that pass the filters
	limit bool                    // the listing stopped at --limit
}

// withParked reads the park destination and runs fn on what it holds.
func (a *app) withParked(ctx context.Context, pf *pubsubFlags, f *parkedFlags, fn func(s *parkedSet) error) error {
	return a.withBroker(ctx, pf, func(b broker) (err error) {
		dest := f.destination()
		sub, err := b.Subscription(ctx, dest, f.reader, subscriptionOptions{maxHeld: f.limit})
		if errors.Is(err, errUnknownTopic) && f.park == "" {
			return fmt.Errorf("%w\n(the park destination of topic %q; give --park if its consumers park elsewhere)", err, f.topic)
		}
		if err != nil {
			return fmt.Errorf("reading the park destination %q: %w", dest, err)
		}
		p := pubsub.NewParked(sub, &pubsub.ParkedOptions{IdleWait: f.wait})
		defer func() { err = errors.Join(err, p.Close()) }()
		s := &parkedSet{b: b, p: p, f: f, dest: dest}
		if err := s.read(ctx); err != nil {
			return err
		}
		if s.limit {
			fmt.Fprintf(a.stderr, "fjord: read the first %d messages of %s (--limit); more may be parked\n", f.limit, dest)
		}
		return fn(s)
	})
}

// read holds every parked message (up to --limit), keeping those that
// pass --consumer and --source.
func (s *parkedSet) read(ctx context.Context) error {
	n := 0
	for pm, err := range s.p.List(ctx) {
		if err != nil {
			return err
		}
		if (s.f.consumer == "" || pm.Consumer == s.f.consumer) && (s.f.source == "" || pm.Original.Attributes["source"] == s.f.source) {
			s.msgs = append(s.msgs, pm)
		}
		if n++; n == s.f.limit {
			s.limit = true
			break
		}
	}
	return nil
}

// pick returns the messages named by ids, or all of them. Every id must
// name parked messages of one source; several copies of one message (it
// was parked, requeued and parked again) are all picked.
func (s *parkedSet) pick(ids []string, all bool) ([]*pubsub.ParkedMessage, error) {
	if all {
		return s.msgs, nil
	}
	var out []*pubsub.ParkedMessage
	for _, id := range ids {
		var found []*pubsub.ParkedMessage
		sources := map[string]bool{}
		for _, pm := range s.msgs {
			if pm.Original.Attributes["id"] == id {
				found = append(found, pm)
				sources[pm.Original.Attributes["source"]] = true
			}
		}
		switch {
		case len(found) == 0:
			return nil, fmt.Errorf("no parked message with id %q in %s%s", id, s.dest, s.filtersNote())
		case len(sources) > 1:
			return nil, fmt.Errorf("id %q names parked messages of %d sources (%s): give --source", id, len(sources),
				strings.Join(slices.Sorted(maps.Keys(sources)), ", "))
		}
		for _, pm := range found {
			if !slices.Contains(out, pm) { // an id given twice
				out = append(out, pm)
			}
		}
	}
	return out, nil
}

func (s *parkedSet) filtersNote() string {
	var fs []string
	if s.f.consumer != "" {
		fs = append(fs, "--consumer "+s.f.consumer)
	}
	if s.f.source != "" {
		fs = append(fs, "--source "+s.f.source)
	}
	if s.limit {
		fs = append(fs, fmt.Sprintf("the first %d messages (--limit)", s.f.limit))
	}
	if len(fs) == 0 {
		return ""
	}
	return " (looking at " + strings.Join(fs, ", ") + ")"
}

// requeue publishes pms back to the topics they came from.
func (a *app) requeue(ctx context.Context, s *parkedSet, pms []*pubsub.ParkedMessage) (err error) {
	topics := map[string]driver.Topic{}
	defer func() {
		for _, t := range topics {
			err = errors.Join(err, t.Close())
		}
	}()
	for _, pm := range pms {
		to := cmp.Or(pm.Topic, s.f.topic)
		if to == "" {
			return fmt.Errorf("parked message %q does not say which topic it was consumed from: give --topic", pmID(pm))
		}
		t := topics[to]
		if t == nil {
			if t, err = s.b.Topic(ctx, to); err != nil {
				return fmt.Errorf("requeueing %q: %w", pmID(pm), err)
			}
			topics[to] = t
		}
		if err := s.p.Requeue(ctx, pm, t); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "requeued %s to %s\n", pmID(pm), to)
	}
	return nil
}

// confirm asks question on stderr and reads the answer from stdin.
func (a *app) confirm(question string) bool {
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(a.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func pmID(pm *pubsub.ParkedMessage) string { return pm.Original.Attributes["id"] }

func idList(pms []*pubsub.ParkedMessage) string {
	const most = 5
	var ids []string
	for _, pm := range pms[:min(len(pms), most)] {
		ids = append(ids, pmID(pm))
	}
	if len(pms) > most {
		ids = append(ids, fmt.Sprintf("and %d more", len(pms)-most))
	}
	return strings.Join(ids, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

const parkedRow = "%-36s  %-20s  %-24s  %-12s  %8s  %-24s  %-24s  %s\n"

func (a *app) printParkedList(s *parkedSet, asJSON bool) error {
	w := bufio.NewWriter(a.stdout)
	if asJSON {
		enc := json.NewEncoder(w)
		for _, pm := range s.msgs {
			if err := enc.Encode(parkedToJSON(pm, false)); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	if a.noneParked(s, s.msgs) {
		return nil
	}
	fmt.Fprintf(w, parkedRow, "ID", "SOURCE", "TYPE", "CONSUMER", "ATTEMPTS", "FIRST FAILURE", "LAST FAILURE", "REASON")
	for _, pm := range s.msgs {
		at := pm.Original.Attributes
		fmt.Fprintf(w, parkedRow, at["id"], at["source"], at["type"], pm.Consumer, strconv.Itoa(pm.Attempts),
			optTime(pm.FirstFailure), optTime(pm.LastFailure), preview([]byte(pm.Reason), 80))
	}
	return w.Flush()
}

func optTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return formatTime(t)
}

// parkedJSON is the JSON form of a parked message.
type parkedJSON struct {
	ID           string       `json:"id"`
	Source       string       `json:"source"`
	Type         string       `json:"type"`
	Subject      string       `json:"subject,omitempty"`
	Reason       string       `json:"reason"`
	Attempts     int          `json:"attempts"`
	Topic        string       `json:"topic,omitempty"`
	Consumer     string       `json:"consumer,omitempty"`
	FirstFailure *time.Time   `json:"first_failure,omitempty"`
	LastFailure  *time.Time   `json:"last_failure,omitempty"`
	Requeued     int          `json:"requeued,omitempty"`
	Invalid      string       `json:"invalid,omitempty"`
	Message      *messageJSON `json:"message,omitempty"`
}

func parkedToJSON(pm *pubsub.ParkedMessage, full bool) parkedJSON {
	at := pm.Original.Attributes
	j := parkedJSON{ID: at["id"], Source: at["source"], Type: at["type"], Subject: at["subject"], Reason: pm.Reason,
		Attempts: pm.Attempts, Topic: pm.Topic, Consumer: pm.Consumer,
		FirstFailure: timePtr(pm.FirstFailure), LastFailure: timePtr(pm.LastFailure)}
	j.Requeued, _ = strconv.Atoi(at[driver.RequeueAttribute])
	if pm.Invalid != nil {
		j.Invalid = pm.Invalid.Error()
	}
	if full {
		m := messageToJSON(pm.Original)
		j.Message = &m
	}
	return j
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// writeParked writes pm for a reader: the envelope, the extensions, the
// park details and the data, indented when it is JSON.
func writeParked(w io.Writer, pm *pubsub.ParkedMessage) error {
	at := pm.Original.Attributes
	field := func(indent, name, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s%-*s %s\n", indent, 17-len(indent), name+":", value)
		}
	}
	core := []string{"id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "specversion"}
	for _, name := range core {
		field("", name, at[name])
	}
	field("", "key", pm.Original.Key)
	var exts []string
	for name := range at {
		if !slices.Contains(core, name) {
			exts = append(exts, name)
		}
	}
	if len(exts) > 0 {
		fmt.Fprintln(w, "extensions:")
		for _, name := range slices.Sorted(slices.Values(exts)) {
			field("  ", name, at[name])
		}
	}
	fmt.Fprintln(w, "parked:")
	field("  ", "reason", pm.Reason)
	field("  ", "attempts", strconv.Itoa(pm.Attempts))
	field("  ", "topic", pm.Topic)
	field("  ", "consumer", pm.Consumer)
	field("  ", "first failure", timeOr(pm.FirstFailure))
	field("  ", "last failure", timeOr(pm.LastFailure))
	if pm.Invalid != nil {
		field("  ", "invalid", "not a valid CloudEvent: "+pm.Invalid.Error())
	}
	_, err := fmt.Fprintf(w, "data:\n%s\n", prettyData(pm.Original.Data))
	return err
}

func timeOr(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// prettyData indents JSON, shows text as it is and binary by its size.
func prettyData(b []byte) string {
	switch {
	case len(b) == 0:
		return "(none)"
	case json.Valid(b):
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(b), "", "  "); err == nil {
			return buf.String()
		}
	case isBinary(b):
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	return string(b)
}
