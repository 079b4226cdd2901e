package rabbitpubsub

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The CloudEvents AMQP protocol binding (binary content mode) as applied to
// AMQP 0-9-1: every attribute except datacontenttype is an
// application-property (an AMQP 0-9-1 header) named with the "cloudEvents_"
// prefix; datacontenttype is the content-type property. The binding allows
// "cloudEvents_" and "cloudEvents:" and prefers "_" for JMS compatibility
// (JMS property names cannot contain ':'), so Fjord writes "_" and reads
// both.
const (
	// HeaderPrefix is the prefix Fjord writes.
	HeaderPrefix = "cloudEvents_"
	// headerPrefixColon is the binding's other prefix, accepted on receipt.
	headerPrefixColon = "cloudEvents:"
	// partitionKey is the CloudEvents Partitioning extension carrying
	// driver.Message.Key.
	partitionKey = "partitionkey"
)

// encode maps m to an AMQP publishing in binary content mode. The id is
// also the message-id property, so that RabbitMQ tools and AMQP clients
// that know nothing of CloudEvents still see it, unless it is longer than
// that property (an AMQP short string) can be.
func encode(m *driver.Message) amqp.Publishing {
	headers := make(amqp.Table, len(m.Attributes)+1)
	for name, value := range m.Attributes {
		if name == "datacontenttype" {
			continue
		}
		headers[HeaderPrefix+name] = value
	}
	if m.Key != "" {
		headers[HeaderPrefix+partitionKey] = m.Key
	}
	return amqp.Publishing{
		Headers:      headers,
		ContentType:  m.Attributes["datacontenttype"],
		MessageId:    shortOrEmpty(m.Attributes["id"]),
		DeliveryMode: amqp.Persistent,
		Body:         m.Data,
	}
}

// maxShortstr is the longest AMQP short string: routing keys, header
// names and the content-type and message-id properties.
const maxShortstr = 255

func shortOrEmpty(s string) string {
	if len(s) > maxShortstr {
		return ""
	}
	return s
}

// checkFits reports, as an error matching ErrTooLarge, what of p and its
// routing key AMQP 0-9-1 cannot carry: a short string over 255 bytes, or a
// content header frame (properties and headers) over frameMax, the
// connection's negotiated frame_max (0 or less: no limit). amqp091 would
// fail such a publish by closing the whole connection.
func checkFits(p *amqp.Publishing, routingKey string, frameMax int) error {
	id, _ := p.Headers[HeaderPrefix+"id"].(string)
	tooLong := func(what string, n int) error {
		return fmt.Errorf("%w: message %q: %s is %d bytes, more than AMQP's %d", ErrTooLarge, id, what, n, maxShortstr)
	}
	if len(routingKey) > maxShortstr {
		return tooLong("the routing key", len(routingKey))
	}
	if len(p.ContentType) > maxShortstr {
		return tooLong("datacontenttype (the content-type property)", len(p.ContentType))
	}
	for name := range p.Headers {
		if len(name) > maxShortstr {
			return tooLong(fmt.Sprintf("header name %.40q…", name), len(name))
		}
	}
	size := headerFrameSize(p)
	if frameMax > 0 && size > frameMax {
		return fmt.Errorf("%w: message %q: its attributes take %d bytes, more than the connection's frame_max of %d", ErrTooLarge, id, size, frameMax)
	}
	return nil
}

// headerFrameSize is the size of p's content header frame: frame header
// and end (8); class, weight, body size and property flags (14); then the
// properties encode sets: content-type and message-id (short strings),
// delivery-mode, and the headers table of string values.
func headerFrameSize(p *amqp.Publishing) int {
	size := 8 + 14 + 1 + len(p.ContentType) + 1 + 1 + len(p.MessageId) + 4
	for name, v := range p.Headers {
		size += 1 + len(name) + 1 + 4 + len(canonical(v))
	}
	return size
}

// decode maps the parts of a delivery the binding covers back to a driver
// message: attributes from the prefixed headers (either prefix; native
// AMQP values are turned into the attributes' canonical string forms),
// datacontenttype from content-type, Key from the partitionkey extension.
// Headers without a prefix are not attributes and are ignored. It never
// fails: a message that is not a valid CloudEvent is reported by package
// pubsub, which parks it.
func decode(headers amqp.Table, contentType string, body []byte) *driver.Message {
	m := &driver.Message{Attributes: make(map[string]string, len(headers)+1), Data: body}
	for name, value := range headers {
		attr, ok := strings.CutPrefix(name, HeaderPrefix)
		if !ok {
			attr, ok = strings.CutPrefix(name, headerPrefixColon)
		}
		if !ok || attr == "" {
			continue
		}
		m.Attributes[attr] = canonical(value)
	}
	if contentType != "" {
		m.Attributes["datacontenttype"] = contentType
	}
	if key, ok := m.Attributes[partitionKey]; ok {
		m.Key = key
		delete(m.Attributes, partitionKey)
	}
	return m
}

// canonical is the CloudEvents canonical string form of an AMQP header
// value.
func canonical(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// deliveries is how often the broker has delivered d: a quorum queue's
// x-delivery-count header counts earlier failed deliveries; the
// Redelivered flag says "at least 2" (RabbitMQ 4 no longer counts a
// delivery given back by a closed channel).
func deliveries(d *amqp.Delivery) int {
	n := 1
	switch c := d.Headers["x-delivery-count"].(type) {
	case int64:
		n = int(c) + 1
	case int32:
		n = int(c) + 1
	case int:
		n = c + 1
	}
	if d.Redelivered && n < 2 {
		n = 2
	}
	return n
}
