package kafkapubsub_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// broker is a Kafka cluster for one test: its seed addresses and an admin
// client.
type broker struct {
	seeds []string
	admin *kgo.Client
	// kfake is the in-process cluster, nil for a real broker.
	kfake *kfake.Cluster
}

// eachBroker runs fn against an in-process kfake cluster (always) and
// against the real broker FJORD_TEST_KAFKA names ("host:port[,host:port]"),
// skipping that run when the variable is unset.
func eachBroker(t *testing.T, fn func(t *testing.T, b *broker)) {
	t.Run("kfake", func(t *testing.T) { fn(t, newKfake(t)) })
	t.Run("kafka", func(t *testing.T) {
		env := os.Getenv("FJORD_TEST_KAFKA")
		if env == "" {
			t.Skip("FJORD_TEST_KAFKA is not set: skipping tests against a real Kafka broker")
		}
		fn(t, newBroker(t, strings.Split(env, ",")))
	})
}

// newKfake starts an in-process cluster of one broker, closed when t ends.
func newKfake(t testing.TB) *broker {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := newBroker(t, c.ListenAddrs())
	b.kfake = c
	return b
}

func newBroker(t testing.TB, seeds []string) *broker {
	t.Helper()
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	return &broker{seeds: seeds, admin: admin}
}

// topic creates a topic unique to the test with the given partitions and
// deletes it when the test ends, through an admin client of its own that it
// then closes (so that no connection made during the test outlives it).
func (b *broker) topic(t testing.TB, partitions int32) string {
	t.Helper()
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	name := unique("fjord-test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkapubsub.CreateTopic(ctx, admin, name, kafkapubsub.TopicConfig{Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kafkapubsub.DeleteTopic(ctx, admin, name); err != nil {
			t.Error(err)
		}
	})
	return name
}

// filled creates a topic of the given partitions and sends it n messages,
// numbered from 0, over keys keys; it returns the topic and the messages.
func (b *broker) filled(t testing.TB, partitions int32, n, keys int) (string, []*driver.Message) {
	t.Helper()
	topic := b.topic(t, partitions)
	var sent []*driver.Message
	for i := range n {
		sent = append(sent, msg(i, "k"+strconv.Itoa(i%keys)))
	}
	send(t, b.openTopic(t, topic), sent...)
	return topic, sent
}

func (b *broker) openTopic(t testing.TB, topic string) *kafkapubsub.Topic {
	t.Helper()
	tp, err := kafkapubsub.OpenTopic(b.seeds, topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

func (b *broker) openSub(t testing.TB, group, topic string) *kafkapubsub.Subscription {
	t.Helper()
	s, err := kafkapubsub.OpenSubscription(b.seeds, group, topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func unique(prefix string) string { return prefix + "-" + rand.Text()[:10] }

// msg is a valid CloudEvents message numbered n with key.
func msg(n int, key string) *driver.Message {
	return &driver.Message{
		Attributes: map[string]string{
			"id": fmt.Sprint(n), "source": "/test", "type": "test.event", "specversion": "1.0",
		},
		Key:  key,
		Data: []byte(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

// send sends msgs and fails the test on error.
func send(t testing.TB, tp driver.Topic, msgs ...*driver.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tp.Send(ctx, msgs); err != nil {
		t.Fatal(err)
	}
}

// quiet receives for a short while and fails if a message comes: it shows
// that nothing more is delivered.
func quiet(t testing.TB, s driver.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if got, err := s.Receive(ctx, 100); err == nil {
		t.Fatalf("received %d more messages (first id %s), want none", len(got), got[0].Attributes["id"])
	}
}

// drain receives until nothing comes for a second and returns what came.
func drain(s driver.Subscription) []*driver.Message {
	var got []*driver.Message
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		more, err := s.Receive(ctx, 100)
		cancel()
		if err != nil {
			return got
		}
		got = append(got, more...)
	}
}

func ack(t testing.TB, s driver.Subscription, msgs ...*driver.Message) {
	t.Helper()
	if err := s.Ack(context.Background(), drivertest.AckIDs(msgs)); err != nil {
		t.Fatal(err)
	}
}

func ids(msgs []*driver.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Attributes["id"]
	}
	return out
}
