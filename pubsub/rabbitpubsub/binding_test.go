package rabbitpubsub

import (
	"testing"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name        string
		headers     amqp.Table
		contentType string
		want        *driver.Message
	}{
		{
			name:    "underscore prefix, partition key",
			headers: amqp.Table{"cloudEvents_id": "1", "cloudEvents_partitionkey": "k", "other": "x"},
			want:    &driver.Message{Attributes: map[string]string{"id": "1"}, Key: "k"},
		},
		{
			name: "colon prefix and native AMQP values",
			headers: amqp.Table{"cloudEvents:id": "2", "cloudEvents:time": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				"cloudEvents:n": int32(7), "cloudEvents:b": false, "cloudEvents:bin": []byte("raw")},
			contentType: "text/plain",
			want: &driver.Message{Attributes: map[string]string{"id": "2", "time": "2026-01-02T03:04:05Z", "n": "7",
				"b": "false", "bin": "raw", "datacontenttype": "text/plain"}},
		},
		{
			name:    "no attributes: not a CloudEvent, left to package pubsub",
			headers: amqp.Table{"x-app": "1", "cloudEvents_": "empty name"},
			want:    &driver.Message{Attributes: map[string]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode(tt.headers, tt.contentType, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeliveries(t *testing.T) {
	tests := []struct {
		d    amqp.Delivery
		want int
	}{
		{amqp.Delivery{}, 1},
		{amqp.Delivery{Redelivered: true}, 2},
		{amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int64(0)}}, 1},
		{amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int64(4)}, Redelivered: true}, 5},
		{amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int32(2)}}, 3},
		{amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int64(0)}, Redelivered: true}, 2},
	}
	for _, tt := range tests {
		if got := deliveries(&tt.d); got != tt.want {
			t.Errorf("deliveries(headers %v, redelivered %v) = %d, want %d", tt.d.Headers, tt.d.Redelivered, got, tt.want)
		}
	}
}

// FuzzBindingRoundTrip checks that any attribute, key and payload survive
// encode and decode, and that decode takes whatever headers come.
func FuzzBindingRoundTrip(f *testing.F) {
	f.Add("subject", "order/42", "application/json", "key-1", []byte(`{"a":1}`))
	f.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", []byte{0, 0xff})
	f.Fuzz(func(t *testing.T, name, value, contentType, key string, data []byte) {
		if name == "" || name == "datacontenttype" || name == partitionKey {
			t.Skip()
		}
		in := &driver.Message{Attributes: map[string]string{"id": "1", name: value}, Key: key, Data: data}
		if contentType != "" {
			in.Attributes["datacontenttype"] = contentType
		}
		p := encode(in)
		out := decode(p.Headers, p.ContentType, p.Body)
		if diff := cmp.Diff(in, out); diff != "" {
			t.Errorf("round trip (-sent +decoded):\n%s", diff)
		}
		// Arbitrary headers: decode never fails or panics.
		_ = decode(amqp.Table{name: value, HeaderPrefix + name: data, headerPrefixColon + key: int64(len(data))}, contentType, data)
	})
}
