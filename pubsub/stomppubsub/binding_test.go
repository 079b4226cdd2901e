package stomppubsub

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    *driver.Message
	}{
		{
			name: "attributes, key, content type, broker headers",
			headers: []string{"cloudEvents_id", "1", "cloudEvents_partitionkey", "k", "content-type", "text/plain",
				"message-id", "ID:broker-1", "timestamp", "1795652148013", "destination", "/queue/q"},
			want: &driver.Message{Attributes: map[string]string{"id": "1", "datacontenttype": "text/plain"}, Key: "k",
				Deliveries: 1, PublishTime: time.UnixMilli(1795652148013)},
		},
		{
			name:    "redelivered; a repeated header counts once (STOMP 1.2: the first)",
			headers: []string{"cloudEvents_id", "first", "cloudEvents_id", "second", "redelivered", "true", "timestamp", "x"},
			want:    &driver.Message{Attributes: map[string]string{"id": "first"}, Deliveries: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode(frame.NewHeader(tt.headers...), nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzBindingRoundTrip checks that any attribute and key survive being
// turned into STOMP headers and back, through go-stomp's frame encoding
// (which escapes ':', '\n', '\r' and '\').
func FuzzBindingRoundTrip(f *testing.F) {
	f.Add("subject", "a:b\\c\nd", "application/json", "key-1", []byte(`{"a":1}`))
	f.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "", []byte{0, 0xff})
	f.Fuzz(func(t *testing.T, name, value, contentType, key string, data []byte) {
		if name == "" || name == "datacontenttype" || name == partitionKey {
			t.Skip()
		}
		in := &driver.Message{Attributes: map[string]string{"id": "1", name: value}, Key: key, Data: data, Deliveries: 1}
		if contentType != "" {
			in.Attributes["datacontenttype"] = contentType
		}
		h := frame.NewHeader(append(headers(in), frame.ContentType, contentType,
			frame.ContentLength, strconv.Itoa(len(data)))...)
		var wire bytes.Buffer
		if err := frame.NewWriter(&wire).Write(&frame.Frame{Command: frame.MESSAGE, Header: h, Body: data}); err != nil {
			t.Fatalf("writing the frame: %v", err)
		}
		read, err := frame.NewReader(&wire).Read()
		if err != nil {
			t.Fatalf("reading back the frame: %v", err)
		}
		out := decode(read.Header, read.Body)
		if diff := cmp.Diff(in, out); diff != "" {
			t.Errorf("round trip (-sent +decoded):\n%s", diff)
		}
	})
}
