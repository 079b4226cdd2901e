package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/fjord-data/fjord/pubsub"
)

// extensionCarrier carries trace context in a message's CloudEvents
// extensions: "traceparent" and "tracestate" (the CloudEvents distributed
// tracing extension) and "baggage".
type extensionCarrier struct{ m *pubsub.Message }

func (c extensionCarrier) Get(key string) string { return c.m.Extensions[key] }

func (c extensionCarrier) Set(key, value string) {
	if c.m.Extensions == nil {
		c.m.Extensions = make(map[string]string, 2)
	}
	c.m.Extensions[key] = value
}

func (c extensionCarrier) Keys() []string {
	keys := make([]string, 0, len(c.m.Extensions))
	for k := range c.m.Extensions {
		keys = append(keys, k)
	}
	return keys
}

var _ propagation.TextMapCarrier = extensionCarrier{}

// InjectMessage records a producer span ("create <destination>") for msg
// as a child of the span in ctx, and writes that span's context into msg's
// traceparent, tracestate and baggage extensions, so the consumer's span
// joins the same trace. Call it (or pass it as pubsub's Inject option)
// before the message is published.
func (t *Telemetry) InjectMessage(ctx context.Context, destination string, msg *pubsub.Message) {
	ctx, span := t.tracer.Start(ctx, "create "+destination, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messageAttributes(destination, msg)...))
	t.propagator.Inject(ctx, extensionCarrier{msg})
	span.End()
}

// ConsumeMessage runs handle in a consumer span ("process <consumer>") that
// is a child of the producer span carried in msg's extensions and links to
// it; a message without trace context starts a new trace. The span records
// handle's error.
func (t *Telemetry) ConsumeMessage(ctx context.Context, consumer string, msg *pubsub.Message, handle func(context.Context) error) error {
	remote := t.propagator.Extract(ctx, extensionCarrier{msg})
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messageAttributes(consumer, msg)...)}
	if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := t.tracer.Start(remote, "process "+consumer, opts...)
	defer span.End()
	err := handle(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

func messageAttributes(destination string, msg *pubsub.Message) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.destination.name", destination),
		attribute.String("messaging.message.id", msg.ID),
		attribute.String("cloudevents.event_source", msg.Source),
		attribute.String("cloudevents.event_type", msg.Type),
	}
}

// MessageInjector returns a pubsub.TopicOptions.Inject func for the named
// destination: each published message gets a producer span and carries
// its context (see InjectMessage).
func (t *Telemetry) MessageInjector(destination string) func(context.Context, *pubsub.Message) {
	return func(ctx context.Context, m *pubsub.Message) { t.InjectMessage(ctx, destination, m) }
}

// TraceHandler wraps a pubsub handler: each message is handled in a
// consumer span of the producer's trace (see ConsumeMessage).
func (t *Telemetry) TraceHandler(consumer string, h pubsub.Handler) pubsub.Handler {
	return func(ctx context.Context, m *pubsub.Message) error {
		return t.ConsumeMessage(ctx, consumer, m, func(ctx context.Context) error { return h(ctx, m) })
	}
}
