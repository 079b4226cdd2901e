package stomppubsub

import (
	"strconv"
	"strings"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/go-stomp/stomp/v3/frame"
)

// CloudEvents has no STOMP binding. Fjord maps the attributes as the AMQP
// binding does for JMS-compatible brokers, because ActiveMQ (Classic and
// Artemis) turns STOMP headers into JMS message properties: every
// attribute except datacontenttype is a header named "cloudEvents_" + the
// attribute name, so that JMS and AMQP consumers of the same destination
// see the AMQP binding's names and JMS selectors can use them (the HTTP
// binding's "ce-" names contain '-', which is not allowed in a JMS property
// name); datacontenttype is STOMP's own content-type header; the Key is
// the partitionkey extension. Values are sent as they are: STOMP 1.2
// escapes ':', '\n', '\r' and '\' in headers.
const (
	// HeaderPrefix is the prefix of the attribute headers.
	HeaderPrefix = "cloudEvents_"
	partitionKey = "partitionkey"
)

// headers are the STOMP headers of m, other than content-type.
func headers(m *driver.Message) []string {
	h := make([]string, 0, 2*len(m.Attributes)+2)
	for name, value := range m.Attributes {
		if name != "datacontenttype" {
			h = append(h, HeaderPrefix+name, value)
		}
	}
	if m.Key != "" {
		h = append(h, HeaderPrefix+partitionKey, m.Key)
	}
	return h
}

// decode maps a received MESSAGE frame's headers and body back: attributes
// from the prefixed headers, datacontenttype from content-type, Key from
// partitionkey; the broker's "redelivered" flag gives Deliveries 2 (the
// least it can be: ActiveMQ sends no count over STOMP) and its
// "timestamp" (milliseconds since the epoch, set on arrival) the
// PublishTime. Other headers are not attributes and are ignored.
func decode(h *frame.Header, body []byte) *driver.Message {
	m := &driver.Message{Attributes: make(map[string]string), Data: body, Deliveries: 1}
	for i := range h.Len() {
		name, value := h.GetAt(i)
		if attr, ok := strings.CutPrefix(name, HeaderPrefix); ok && attr != "" {
			if _, seen := m.Attributes[attr]; !seen { // STOMP: the first occurrence counts
				m.Attributes[attr] = value
			}
		}
	}
	if ct, ok := h.Contains(frame.ContentType); ok && ct != "" {
		m.Attributes["datacontenttype"] = ct
	}
	if key, ok := m.Attributes[partitionKey]; ok {
		m.Key = key
		delete(m.Attributes, partitionKey)
	}
	if h.Get("redelivered") == "true" {
		m.Deliveries = 2
	}
	if ms, err := strconv.ParseInt(h.Get("timestamp"), 10, 64); err == nil && ms > 0 {
		m.PublishTime = time.UnixMilli(ms)
	}
	return m
}
