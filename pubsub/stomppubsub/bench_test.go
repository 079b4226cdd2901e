package stomppubsub_test

import (
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// BenchmarkSend measures sending persistent messages to an ActiveMQ queue:
// each operation is one Send of a batch (one transaction, one COMMIT
// receipt). The messages stay on the test queue, which is uniquely named.
//
//	FJORD_TEST_ACTIVEMQ=127.0.0.1:61613 go test -run '^$' -bench Send -benchtime 2s ./pubsub/stomppubsub/
func BenchmarkSend(b *testing.B) {
	addr := brokerAddr(b)
	for _, batch := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			q := uniqueQueue()
			topic := openTopic(b, addr, q)
			msgs := make([]*driver.Message, batch)
			for i := range msgs {
				msgs[i] = message(i)
				msgs[i].Data = make([]byte, 256)
			}
			for b.Loop() {
				if err := topic.Send(b.Context(), msgs); err != nil {
					b.Fatalf("Send: %v", err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
			drain(b, addr, q, b.N*batch)
		})
	}
}

// drain receives and acks n messages so that the broker can remove the
// queue.
func drain(b *testing.B, addr, q string, n int) {
	b.StopTimer()
	sub := openSub(b, addr, q, nil)
	for n > 0 {
		got := drivertest.ReceiveN(b, sub, min(n, 100)) // ActiveMQ pages in 200 at a time
		if err := sub.Ack(b.Context(), drivertest.AckIDs(got)); err != nil {
			b.Fatalf("Ack: %v", err)
		}
		n -= len(got)
	}
}
