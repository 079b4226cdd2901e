package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
)

type publishFlags struct {
	topic, typ, source, subject, id, key string
	data, dataFile, contentType          string
	ext                                  map[string]string
}

func newPubSubPublishCmd(a *app, pf *pubsubFlags) *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish one CloudEvent to a topic",
		Long: `Publish one message, a CloudEvent, to --topic and print its id once the
broker has stored it. The event's data is JSON (--payload, or --payload-file;
"-" reads standard input) unless --content-type says otherwise. --id defaults to a new
UUIDv7: give it to make publishing again safe (brokers and consumers
deduplicate on source and id).`,
		Example: `  fjord pubsub publish --topic orders --type shop.order.placed --source /shop/orders \
      --subject order/42 --payload '{"total":1200}'
  fjord pubsub publish --topic orders --type shop.order.placed --source /shop/orders --payload-file order.json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.publishMessage(cmd, f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return a.withBroker(ctx, pf, func(b broker) error {
				return a.publish(ctx, b, f.topic, m)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "topic to publish to (required)")
	fl.StringVar(&f.typ, "type", "", "event type, such as shop.order.placed (required)")
	fl.StringVar(&f.source, "source", "", "event source, such as /shop/orders (required)")
	fl.StringVar(&f.subject, "subject", "", "what the event is about, such as order/42")
	fl.StringVar(&f.id, "id", "", "event id, unique within the source (default: a new UUIDv7)")
	fl.StringVar(&f.key, "key", "", "order key (default: the subject, else the id)")
	// Not --data: that is the data directory of every command.
	fl.StringVar(&f.data, "payload", "", "the event's data, JSON")
	fl.StringVar(&f.dataFile, "payload-file", "", `read the event's data from this file ("-": standard input)`)
	fl.StringVar(&f.contentType, "content-type", "application/json", "media type of the data; JSON is checked")
	fl.StringToStringVar(&f.ext, "ext", nil, "extension attributes, name=value (repeatable), such as traceparent=…")
	return cmd
}

// publishMessage builds the message the flags describe.
func (a *app) publishMessage(cmd *cobra.Command, f publishFlags) (*pubsub.Message, error) {
	for _, req := range []struct{ flag, value string }{{"topic", f.topic}, {"type", f.typ}, {"source", f.source}} {
		if req.value == "" {
			return nil, usagef(cmd, "missing --%s", req.flag)
		}
	}
	data, err := a.publishData(cmd, f)
	if err != nil {
		return nil, err
	}
	id := f.id
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		id = u.String()
	}
	m := &pubsub.Message{ID: id, Source: f.source, Type: f.typ, Subject: f.subject, Key: f.key,
		Time: time.Now().UTC(), DataContentType: f.contentType, Extensions: f.ext, Data: data}
	if err := m.Validate(); err != nil {
		return nil, usagef(cmd, "%v", err)
	}
	return m, nil
}

// publishData reads --payload or --payload-file and checks that JSON is JSON.
func (a *app) publishData(cmd *cobra.Command, f publishFlags) ([]byte, error) {
	var data []byte
	switch {
	case f.data != "" && f.dataFile != "":
		return nil, usagef(cmd, "give --payload or --payload-file, not both")
	case f.dataFile == "-":
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the data from standard input: %w", err)
		}
		data = b
	case f.dataFile != "":
		b, err := os.ReadFile(f.dataFile)
		if err != nil {
			return nil, fmt.Errorf("reading the data: %w", err)
		}
		data = b
	default:
		data = []byte(f.data)
	}
	if isJSONType(f.contentType) && len(data) > 0 {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			from := "--payload"
			if f.dataFile != "" {
				from = "the data of --payload-file " + f.dataFile
			}
			return nil, usagef(cmd, "%s is not JSON (%v); give --content-type for other data", from, err)
		}
	}
	return data, nil
}

func isJSONType(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// publish sends m to topic through a pubsub.Topic and prints its id.
func (a *app) publish(ctx context.Context, b broker, topic string, m *pubsub.Message) error {
	d, err := b.Topic(ctx, topic)
	if err != nil {
		return err
	}
	t := pubsub.NewTopic(d, &pubsub.TopicOptions{MaxAttempts: 3})
	err = t.Publish(ctx, m)
	if err = errors.Join(err, t.Close()); err != nil {
		return fmt.Errorf("publishing to %q: %w", topic, err)
	}
	_, err = fmt.Fprintln(a.stdout, m.ID)
	return err
}

type pubsubTailFlags struct {
	topic string
	from  string
	json  bool
}

func newPubSubTailCmd(a *app, pf *pubsubFlags) *cobra.Command {
	var f pubsubTailFlags
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the messages published to a topic, until interrupted",
		Long: `Follow --topic with a consumer of its own, which takes nothing from other
consumers and is removed when the command ends, and print messages as they
arrive until Ctrl-C. --from start prints the messages the broker still
holds first.`,
		Example: `  fjord pubsub tail --topic orders
  fjord pubsub tail --topic orders.parked --from start --json`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.topic == "" {
				return usagef(cmd, "missing --topic")
			}
			if f.from != "start" && f.from != "end" {
				return usagef(cmd, "invalid --from %q: want start or end", f.from)
			}
			ctx := cmd.Context()
			return a.withBroker(ctx, pf, func(b broker) error {
				return a.tailTopic(ctx, b, f)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "topic to follow (required)")
	fl.StringVar(&f.from, "from", "end", "end: only new messages; start: also those the broker holds")
	fl.BoolVar(&f.json, "json", false, "one JSON object per message and line")
	return cmd
}

func (a *app) tailTopic(ctx context.Context, b broker, f pubsubTailFlags) (err error) {
	sub, err := b.Tail(ctx, f.topic, f.from == "start")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, sub.Close()) }()
	fmt.Fprintf(a.stderr, "fjord: following %s; waiting for messages (Ctrl-C to stop)\n", f.topic)
	w := bufio.NewWriter(a.stdout)
	defer w.Flush()
	p := &messagePrinter{w: w, json: f.json}
	for {
		msgs, err := sub.Receive(ctx, 100)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal way to stop
			}
			return fmt.Errorf("following %q: %w", f.topic, err)
		}
		ids := make([]driver.AckID, len(msgs))
		for i, dm := range msgs {
			ids[i] = dm.AckID
			if err := p.print(dm); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := sub.Ack(ctx, ids); err != nil && ctx.Err() == nil {
			return fmt.Errorf("following %q: %w", f.topic, err)
		}
	}
}

// messagePrinter prints received messages as rows or JSON lines.
type messagePrinter struct {
	w       io.Writer
	json    bool
	started bool
}

const messageRow = "%-24s  %-36s  %-20s  %-24s  %-16s  %s\n"

func (p *messagePrinter) print(dm *driver.Message) error {
	if p.json {
		return json.NewEncoder(p.w).Encode(messageToJSON(dm))
	}
	if !p.started {
		p.started = true
		if _, err := fmt.Fprintf(p.w, messageRow, "TIME", "ID", "SOURCE", "TYPE", "SUBJECT", "DATA"); err != nil {
			return err
		}
	}
	a := dm.Attributes
	t := a["time"]
	if !dm.PublishTime.IsZero() {
		t = formatTime(dm.PublishTime)
	}
	_, err := fmt.Fprintf(p.w, messageRow, t, a["id"], a["source"], a["type"], a["subject"], preview(dm.Data, 60))
	return err
}

// messageJSON is the JSON form of a message: its CloudEvents attributes
// (structured mode, with the extensions beside the core attributes), the
// data embedded when it is JSON and base64 otherwise, and what the broker
// says.
type messageJSON struct {
	Attributes map[string]string `json:"attributes"`
	Key        string            `json:"key,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	DataBase64 []byte            `json:"data_base64,omitempty"`
	Published  *time.Time        `json:"published,omitempty"`
	Deliveries int               `json:"deliveries,omitempty"`
}

func messageToJSON(dm *driver.Message) messageJSON {
	j := messageJSON{Attributes: dm.Attributes, Key: dm.Key, Deliveries: dm.Deliveries}
	j.Data, j.DataBase64 = rawOrBytes(dm.Data)
	if !dm.PublishTime.IsZero() {
		t := dm.PublishTime.UTC()
		j.Published = &t
	}
	return j
}
