package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// Features is what Kafka can do for package pubsub:
//
//   - OrderedKeys: a message's Key is the record key, and the default
//     partitioner sends every record of one key to one partition, which a
//     group delivers in offset order.
//   - Redelivery: a message not acknowledged is delivered again after Nack
//     (the partition seeks back to the lowest nacked offset) and after the
//     subscription closes or its member crashes (the group's committed offset
//     never passes an unacknowledged message).
//   - Dedup is false: Kafka's idempotent producer drops the retries of one
//     producer session, not a message sent again with the same (source, id).
//   - Deliveries is false: Kafka does not count deliveries; received messages
//     carry Deliveries 0.
var Features = driver.Features{OrderedKeys: true, Redelivery: true}

// ErrClosed is returned by the methods of a Topic or Subscription that has
// been closed.
var ErrClosed = errors.New("kafkapubsub: closed")

// ackID is a received message's driver.AckID: its topic, partition and
// offset.
type ackID struct {
	topic     string
	partition int32
	offset    int64
}

func (id ackID) String() string { return fmt.Sprintf("%s/%d@%d", id.topic, id.partition, id.offset) }

// isRetryable reports whether err, from franz-go or this package, may go
// away when the call is tried again: a broker that is down, moving or busy,
// a timeout. A closed client, a canceled context and a request the broker
// rejects for what it is (too large, not authorized, invalid) are not.
func isRetryable(err error) bool {
	var ke *kerr.Error
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, ErrClosed), errors.Is(err, kgo.ErrClientClosed), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout),
		errors.Is(err, kgo.ErrRecordRetries), errors.Is(err, kgo.ErrMaxBuffered):
		return true
	case errors.As(err, &ke):
		return ke.Retriable
	case errors.As(err, &ne):
		return true
	}
	return kgo.IsRetryableBrokerErr(err)
}

// CloudEvents Kafka protocol binding, binary content mode: data is the
// record value as is, datacontenttype is the "content-type" header, every
// other attribute is a "ce_"-prefixed header with its canonical string
// value, and the message's Key is the record key. The key also travels as
// the "partitionkey" extension (ce_partitionkey), as the binding's key
// mapper says, unless the message's attributes already name one.
const (
	headerPrefix      = "ce_"
	headerContentType = "content-type"
	attrContentType   = "datacontenttype"
	attrPartitionKey  = "partitionkey"
)

// toRecord maps m to a record of topic.
func toRecord(topic string, m *driver.Message) *kgo.Record {
	r := &kgo.Record{Topic: topic, Value: m.Data}
	if m.Key != "" {
		r.Key = []byte(m.Key)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range m.Attributes {
			if !yield(k) {
				return
			}
		}
	})
	r.Headers = make([]kgo.RecordHeader, 0, len(names)+1)
	for _, k := range names {
		name := headerPrefix + k
		if k == attrContentType {
			name = headerContentType
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: []byte(m.Attributes[k])})
	}
	if _, ok := m.Attributes[attrPartitionKey]; !ok && m.Key != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerPrefix + attrPartitionKey, Value: []byte(m.Key)})
	}
	return r
}

// fromRecord maps a received record back. Headers that are neither "ce_"
// attributes nor "content-type" are not CloudEvents attributes and are
// left out; a "ce_partitionkey" equal to the record key is the key mapping's
// copy and is left out too (it is Key).
func fromRecord(r *kgo.Record) *driver.Message {
	m := &driver.Message{
		Attributes:  make(map[string]string, len(r.Headers)),
		Key:         string(r.Key),
		Data:        r.Value,
		AckID:       ackID{r.Topic, r.Partition, r.Offset},
		PublishTime: r.Timestamp,
	}
	for _, h := range r.Headers {
		switch {
		case strings.EqualFold(h.Key, headerContentType):
			m.Attributes[attrContentType] = string(h.Value)
		case len(h.Key) > len(headerPrefix) && strings.EqualFold(h.Key[:len(headerPrefix)], headerPrefix):
			m.Attributes[strings.ToLower(h.Key[len(headerPrefix):])] = string(h.Value)
		}
	}
	if pk, ok := m.Attributes[attrPartitionKey]; ok && (pk == m.Key || len(r.Key) == 0) {
		m.Key = pk
		delete(m.Attributes, attrPartitionKey)
	}
	return m
}
