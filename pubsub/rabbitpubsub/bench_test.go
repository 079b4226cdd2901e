package rabbitpubsub_test

import (
	"fmt"
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// BenchmarkSend measures publishing with publisher confirms: each
// operation is one Send of a batch, published whole before its confirms
// are awaited, to an exchange routing to one quorum queue. Batch 1 is the
// unpipelined case: one round trip and one quorum commit per message.
//
//	FJORD_TEST_RABBITMQ=amqp://guest:guest@127.0.0.1:5672/ go test -run '^$' -bench Send -benchtime 2s ./pubsub/rabbitpubsub/
func BenchmarkSend(b *testing.B) {
	for _, batch := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := newFixture(b, nil)
			msgs := make([]*driver.Message, batch)
			for i := range msgs {
				msgs[i] = message(i)
				msgs[i].Data = make([]byte, 256)
			}
			b.ResetTimer()
			for b.Loop() {
				if err := f.topic.Send(b.Context(), msgs); err != nil {
					b.Fatalf("Send: %v", err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
