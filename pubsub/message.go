package pubsub

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// SpecVersion is the CloudEvents version of every Fjord message.
const SpecVersion = "1.0"

// Message is one business event in a CloudEvents 1.0 envelope. Source and ID
// together identify it: a consumer's inbox deduplicates on them, and
// brokers that deduplicate on publish use them as the message ID.
type Message struct {
	// ID is unique within Source (required).
	ID string
	// Source names the producer, as a URI reference such as "/shop/orders"
	// (required).
	Source string
	// Type names the kind of event, such as "shop.order.placed" (required).
	Type string
	// Subject names what the event is about within Source ("order/42").
	Subject string
	// Time is when the event happened, in years 0 to 9999 (RFC 3339);
	// zero means not stated.
	Time time.Time
	// DataContentType is the media type of Data ("application/json").
	DataContentType string
	// DataSchema is a URI of the schema Data adheres to.
	DataSchema string
	// Key orders messages: those with one key are handled in order, those
	// with different keys concurrently. Empty means Subject, then ID.
	Key string
	// Extensions are further CloudEvents attributes ("traceparent",
	// "tracestate", "sequence"…). Names are 1–20 characters [a-z0-9]; the
	// core attribute names above are not extensions, nor is
	// "partitionkey", which carries Key.
	Extensions map[string]string
	// Data is the payload.
	Data []byte
}

// ErrInvalidMessage is matched by every *InvalidMessageError.
var ErrInvalidMessage = errors.New("pubsub: invalid message")

// InvalidMessageError names the attribute that makes a message invalid.
type InvalidMessageError struct {
	Attribute string
	Reason    string
}

// Error names the attribute and the problem.
func (e *InvalidMessageError) Error() string {
	return fmt.Sprintf("pubsub: invalid message: attribute %q %s", e.Attribute, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidMessage) true.
func (e *InvalidMessageError) Is(target error) bool { return target == ErrInvalidMessage }

// coreAttributes are the CloudEvents context attributes Message has fields
// for; they cannot be extensions.
var coreAttributes = map[string]bool{
	"id": true, "source": true, "specversion": true, "type": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
}

// Validate reports whether m is a valid CloudEvent, as *InvalidMessageError.
func (m *Message) Validate() error {
	for _, a := range []struct{ name, value string }{{"id", m.ID}, {"source", m.Source}, {"type", m.Type}} {
		if a.value == "" {
			return &InvalidMessageError{a.name, "is required and empty"}
		}
	}
	for name, value := range m.attributeValues() {
		if !utf8.ValidString(value) {
			return &InvalidMessageError{name, "is not valid UTF-8"}
		}
		if strings.ContainsFunc(value, isControl) {
			return &InvalidMessageError{name, "contains a control character"}
		}
	}
	if y := m.Time.UTC().Year(); !m.Time.IsZero() && (y < 0 || y > 9999) {
		return &InvalidMessageError{"time", fmt.Sprintf("is in year %d, outside RFC 3339's 0000 to 9999", y)}
	}
	for name := range m.Extensions {
		if err := validExtensionName(name); err != nil {
			return err
		}
	}
	return nil
}

func (m *Message) attributeValues() map[string]string {
	v := map[string]string{"id": m.ID, "source": m.Source, "type": m.Type, "subject": m.Subject,
		"datacontenttype": m.DataContentType, "dataschema": m.DataSchema, "partitionkey": m.Key}
	for k, x := range m.Extensions {
		v[k] = x
	}
	return v
}

func validExtensionName(name string) error {
	switch {
	case coreAttributes[name]:
		return &InvalidMessageError{name, "is a core attribute: set the Message field, not an extension"}
	case name == "partitionkey":
		return &InvalidMessageError{name, "carries Key: set Message.Key, not an extension"}
	case name == "" || len(name) > 20:
		return &InvalidMessageError{name, "is not a valid extension name: it must be 1 to 20 characters"}
	case strings.IndexFunc(name, func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') }) >= 0:
		return &InvalidMessageError{name, "is not a valid extension name: only a-z and 0-9 are allowed"}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// OrderKey is the key that orders m: Key, else Subject, else ID.
func (m *Message) OrderKey() string {
	switch {
	case m.Key != "":
		return m.Key
	case m.Subject != "":
		return m.Subject
	}
	return m.ID
}

// toDriver maps m to the driver's attribute form. m must be valid.
func (m *Message) toDriver() *driver.Message {
	attrs := make(map[string]string, 6+len(m.Extensions))
	maps.Copy(attrs, m.Extensions)
	attrs["id"], attrs["source"], attrs["type"], attrs["specversion"] = m.ID, m.Source, m.Type, SpecVersion
	setIf(attrs, "subject", m.Subject)
	setIf(attrs, "datacontenttype", m.DataContentType)
	setIf(attrs, "dataschema", m.DataSchema)
	if !m.Time.IsZero() {
		attrs["time"] = m.Time.UTC().Format(time.RFC3339Nano)
	}
	return &driver.Message{Attributes: attrs, Key: m.OrderKey(), Data: m.Data}
}

func setIf(attrs map[string]string, name, value string) {
	if value != "" {
		attrs[name] = value
	}
}

// fromDriver maps a received message back, reporting why it is not a valid
// CloudEvent when it is not (such messages are parked, never handled).
func fromDriver(dm *driver.Message) (*Message, error) {
	a := dm.Attributes
	if v := a["specversion"]; v != SpecVersion {
		return nil, &InvalidMessageError{"specversion", fmt.Sprintf("is %q, want %q", v, SpecVersion)}
	}
	m := &Message{ID: a["id"], Source: a["source"], Type: a["type"], Subject: a["subject"],
		DataContentType: a["datacontenttype"], DataSchema: a["dataschema"], Key: dm.Key, Data: dm.Data}
	if t, ok := a["time"]; ok {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return nil, &InvalidMessageError{"time", fmt.Sprintf("is %q, not an RFC 3339 time", t)}
		}
		m.Time = parsed
	}
	for k, v := range a {
		if coreAttributes[k] || k == "partitionkey" {
			continue
		}
		if m.Extensions == nil {
			m.Extensions = make(map[string]string)
		}
		m.Extensions[k] = v
	}
	if m.Key == "" {
		m.Key = a["partitionkey"]
	}
	return m, m.Validate()
}
