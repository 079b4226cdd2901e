package natspubsub_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// sdkMessage reads a NATS message in binary content mode with the
// CloudEvents SDK's own machinery, as the SDK's NATS JetStream binding
// does (a protocol module this build cannot fetch): "ce-" headers are
// attributes, or extensions when the spec version does not know them.
type sdkMessage struct{ m jetstream.Msg }

var sdkSpecs = spec.WithPrefix("ce-")

func (s sdkMessage) ReadEncoding() binding.Encoding { return binding.EncodingBinary }

func (s sdkMessage) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (s sdkMessage) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	version := sdkSpecs.Version(s.m.Headers().Get(sdkSpecs.PrefixedSpecVersionName()))
	if version == nil {
		return binding.ErrUnknownEncoding
	}
	for name, values := range s.m.Headers() {
		if !strings.HasPrefix(name, "ce-") {
			continue
		}
		var err error
		if attr := version.Attribute(name); attr != nil {
			err = w.SetAttribute(attr, values[0])
		} else {
			err = w.SetExtension(strings.TrimPrefix(name, "ce-"), values[0])
		}
		if err != nil {
			return err
		}
	}
	return w.SetData(bytes.NewReader(s.m.Data()))
}

func (s sdkMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	version := sdkSpecs.Version(s.m.Headers().Get(sdkSpecs.PrefixedSpecVersionName()))
	if version == nil {
		return nil, nil
	}
	attr := version.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	if v := s.m.Headers().Get(attr.PrefixedName()); v != "" {
		return attr, v
	}
	return attr, nil
}

func (s sdkMessage) GetExtension(name string) any {
	if v := s.m.Headers().Get("ce-" + name); v != "" {
		return v
	}
	return nil
}

// TestCloudEventsSDKReads publishes with the topic and decodes the stored
// message, fetched with the plain NATS client, with the CloudEvents SDK.
func TestCloudEventsSDKReads(t *testing.T) {
	nc := embedded(t).conn(t)
	topic, _, stream := open(t, nc)
	m := message("/shop/orders", "42", "order-42")
	m.Attributes["subject"] = "order/42"
	m.Attributes["time"] = "2026-11-25T10:00:00.123Z"
	m.Attributes["datacontenttype"] = "application/json"
	m.Attributes["dataschema"] = "https://example.com/order.json"
	m.Attributes["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if err := topic.Send(t.Context(), []*driver.Message{m}); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c, err := js.OrderedConsumer(t.Context(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := binding.ToEvent(t.Context(), sdkMessage{raw})
	if err != nil {
		t.Fatalf("the SDK cannot read the message: %v\nheaders: %v", err, raw.Headers())
	}
	if err := ev.Validate(); err != nil {
		t.Errorf("the SDK finds the event invalid: %v", err)
	}
	type event struct {
		ID, Source, Type, Subject, Time, ContentType, Schema, Data string
		Extensions                                                 map[string]any
	}
	got := event{ev.ID(), ev.Source(), ev.Type(), ev.Subject(), ev.Time().Format(time.RFC3339Nano),
		ev.DataContentType(), ev.DataSchema(), string(ev.Data()), ev.Extensions()}
	want := event{"42", "/shop/orders", "shop.order.placed", "order/42", "2026-11-25T10:00:00.123Z",
		"application/json", "https://example.com/order.json", `{"id":"42"}`,
		map[string]any{"traceparent": m.Attributes["traceparent"], "partitionkey": "order-42"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event as the SDK reads it (-want +got):\n%s", diff)
	}
	if id := raw.Headers().Get(nats.MsgIdHdr); len(id) != 32 {
		t.Errorf("Nats-Msg-Id = %q, want 32 hex digits", id)
	}
}
