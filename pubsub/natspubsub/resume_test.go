package natspubsub_test

import (
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
)

// twoConns returns, for every backend, a function giving connections to
// one server: a consumer process that dies and the one that replaces it.
func twoConns(t *testing.T) map[string]func(t *testing.T) (dying, next *nats.Conn) {
	m := map[string]func(t *testing.T) (*nats.Conn, *nats.Conn){
		"embedded": func(t *testing.T) (*nats.Conn, *nats.Conn) {
			s := embedded(t)
			return s.conn(t), s.conn(t)
		},
	}
	if url := os.Getenv(envNATS); url != "" {
		m["external"] = func(t *testing.T) (*nats.Conn, *nats.Conn) { return dial(t, url), dial(t, url) }
	}
	return m
}

func ids(msgs []*driver.Message) []string {
	var got []string
	for _, m := range msgs {
		got = append(got, m.Attributes["id"])
	}
	return got
}

// TestResumeFromAckFloor: a consumer process receives messages 1 to 4,
// acknowledges 1 and 3, and dies (its connection drops, nothing is given
// back). With ResumeFromAckFloor the next process receives everything
// from 2 in stream order, 3 again included; without it, JetStream hands
// out 5 first and 2 and 4 only after AckWait.
func TestResumeFromAckFloor(t *testing.T) {
	tests := []struct {
		name   string
		resume bool
		want   []string
	}{
		{"resume", true, []string{"2", "3", "4", "5", "6", "7", "8"}},
		{"default", false, []string{"5", "6", "7", "8"}},
	}
	for backend, conns := range twoConns(t) {
		for _, tt := range tests {
			t.Run(backend+"/"+tt.name, func(t *testing.T) {
				dying, nc := conns(t)
				stream, subject := names(t, nc)
				topic, err := natspubsub.OpenTopic(t.Context(), nc, subject, &natspubsub.TopicOptions{
					Stream: &jetstream.StreamConfig{Name: stream, Storage: jetstream.FileStorage}})
				if err != nil {
					t.Fatal(err)
				}
				defer topic.Close()
				send := func(from, to int) {
					t.Helper()
					var batch []*driver.Message
					for i := from; i <= to; i++ {
						batch = append(batch, message("/shop", fmt.Sprint(i), "k"))
					}
					if err := topic.Send(t.Context(), batch); err != nil {
						t.Fatal(err)
					}
				}
				opts := &natspubsub.SubscriptionOptions{StreamName: stream, ResumeFromAckFloor: tt.resume}
				send(1, 6)
				first, err := natspubsub.OpenSubscription(t.Context(), dying, subject, "worker", opts)
				if err != nil {
					t.Fatal(err)
				}
				held := drivertest.ReceiveN(t, first, 4)
				if err := first.Ack(t.Context(), []driver.AckID{held[0].AckID, held[2].AckID}); err != nil {
					t.Fatal(err)
				}
				dying.Close() // the process dies: Close cannot give anything back
				if err := first.Close(); err != nil {
					t.Fatal(err)
				}
				send(7, 8)

				next, err := natspubsub.OpenSubscription(t.Context(), nc, subject, "worker", opts)
				if err != nil {
					t.Fatal(err)
				}
				got := drivertest.ReceiveN(t, next, len(tt.want))
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("after the restart (-want +got):\n%s", diff)
				}
				if err := next.Ack(t.Context(), drivertest.AckIDs(got)); err != nil {
					t.Fatal(err)
				}
				expectNone(t, next)
				if err := next.Close(); err != nil {
					t.Fatal(err)
				}
				// Opening again, with the option or without, keeps the
				// consumer where it is.
				for _, o := range []*natspubsub.SubscriptionOptions{opts, {StreamName: stream}} {
					again, err := natspubsub.OpenSubscription(t.Context(), nc, subject, "worker", o)
					if err != nil {
						t.Fatal(err)
					}
					if tt.resume {
						expectNone(t, again)
					}
					again.Close()
				}
			})
		}
	}
}
