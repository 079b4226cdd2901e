package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub"
	"github.com/fjord-data/fjord/pubsub/natspubsub/natsembed"
	"github.com/fjord-data/fjord/pubsub/rabbitpubsub"
	"github.com/fjord-data/fjord/pubsub/stomppubsub"
)

// verifyNoLeaks checks, after every other cleanup of t, that t left no
// goroutine behind.
func verifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// brokerFixture is a broker with a topic and its park destination, and
// the durable subscriptions a broker needs before messages are sent: the
// "billing" consumer's on the topic and the park reader's on the park
// destination.
type brokerFixture struct {
	t           *testing.T
	url         string
	topic, park string
	// openBilling opens the billing subscription and the park topic, for
	// a Router.
	openBilling func() (driver.Subscription, driver.Topic)
	// tailLeft lists what a finished tail left behind (nil: not checked).
	tailLeft func() []string
}

// forEachBroker runs f on an embedded NATS server, with the park subject
// in a stream of its own and in the topic's stream, on the RabbitMQ and
// ActiveMQ brokers of FJORD_TEST_RABBITMQ and FJORD_TEST_ACTIVEMQ, and on
// an in-process Kafka cluster (kfake),
// checking that each subtest leaves no goroutine behind.
func forEachBroker(t *testing.T, f func(t *testing.T, b *brokerFixture)) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) *brokerFixture
	}{
		{"nats", func(t *testing.T) *brokerFixture { return newNATSFixture(t, false) }},
		{"nats-one-stream", func(t *testing.T) *brokerFixture { return newNATSFixture(t, true) }},
		{"rabbitmq", newRabbitFixture},
		{"activemq", newStompFixture},
		{"kafka", newKafkaFixture},
	} {
		t.Run(b.name, func(t *testing.T) {
			verifyNoLeaks(t)
			f(t, b.open(t))
		})
	}
}

// newNATSFixture starts an embedded NATS server listening on loopback,
// with the topic and its park destination each in a stream of its own, or
// both in one stream when shared.
func newNATSFixture(t *testing.T, shared bool) *brokerFixture {
	t.Helper()
	srv, err := natsembed.Start(t.Context(), &natsembed.Options{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	sfx := randomSuffix()
	topic := "orders." + sfx
	f := &brokerFixture{t: t, url: srv.ClientURL(), topic: topic, park: pubsub.ParkTopic(topic)}
	streams := map[string][]string{"ORDERS_" + sfx: {f.topic}, "PARKED_" + sfx: {f.park}}
	if shared {
		streams = map[string][]string{"ORDERS_" + sfx: {f.topic, f.topic + ".>"}}
	}
	for stream, subjects := range streams {
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: stream, Subjects: subjects}); err != nil {
			t.Fatal(err)
		}
	}
	f.openBilling = func() (driver.Subscription, driver.Topic) {
		sub, err := natspubsub.OpenSubscription(t.Context(), nc, f.topic, "billing", nil)
		if err != nil {
			t.Fatal(err)
		}
		park, err := natspubsub.OpenTopic(t.Context(), nc, f.park, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sub, park
	}
	f.tailLeft = func() []string {
		stream, err := js.Stream(t.Context(), "ORDERS_"+sfx)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		names := stream.ConsumerNames(t.Context())
		for name := range names.Name() {
			if name != "billing" {
				left = append(left, name)
			}
		}
		if err := names.Err(); err != nil {
			t.Fatal(err)
		}
		return left
	}
	return f
}

// newRabbitFixture declares the topic and park exchanges and the billing
// and park reader queues, deleted at cleanup.
func newRabbitFixture(t *testing.T) *brokerFixture {
	url := os.Getenv("FJORD_TEST_RABBITMQ")
	if url == "" {
		t.Skip("FJORD_TEST_RABBITMQ is not set")
	}
	conn, err := rabbitpubsub.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	topic := "fjord-cli-" + randomSuffix()
	f := &brokerFixture{t: t, url: url, topic: topic, park: pubsub.ParkTopic(topic)}
	queues := map[string]string{rabbitQueue("billing", f.topic): f.topic, rabbitQueue(pubsub.ParkReader, f.park): f.park}
	t.Cleanup(func() {
		ac, err := amqp.Dial(url)
		if err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		defer ac.Close()
		ch, err := ac.Channel()
		if err != nil {
			t.Errorf("cleaning up: %v", err)
			return
		}
		for q := range queues {
			_, err = ch.QueueDelete(q, false, false, false)
			err = errors.Join(err, ch.ExchangeDelete(queues[q], false, false))
			if err != nil {
				t.Errorf("cleaning up: %v", err)
			}
		}
	})
	for q, exchange := range queues {
		topic, err := conn.OpenTopic(t.Context(), exchange, nil)
		if err != nil {
			t.Fatal(err)
		}
		topic.Close()
		sub, err := conn.OpenSubscription(t.Context(), exchange, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
	}
	f.openBilling = func() (driver.Subscription, driver.Topic) {
		sub, err := conn.OpenSubscription(t.Context(), f.topic, rabbitQueue("billing", f.topic), nil)
		if err != nil {
			t.Fatal(err)
		}
		park, err := conn.OpenTopic(t.Context(), f.park, &rabbitpubsub.TopicOptions{Passive: true})
		if err != nil {
			t.Fatal(err)
		}
		return sub, park
	}
	return f
}

// newStompFixture uses virtual topics of the ActiveMQ broker; their
// consumer queues are made by subscribing once (STOMP cannot delete them).
func newStompFixture(t *testing.T) *brokerFixture {
	addr := os.Getenv("FJORD_TEST_ACTIVEMQ")
	if addr == "" {
		t.Skip("FJORD_TEST_ACTIVEMQ is not set")
	}
	topic := "fjord-cli-" + randomSuffix()
	f := &brokerFixture{t: t, url: "stomp://" + addr, topic: topic, park: pubsub.ParkTopic(topic)}
	subscribe := func(consumer, topic string) driver.Subscription {
		sub, err := stomppubsub.OpenSubscription(t.Context(), addr, stomppubsub.VirtualTopicQueue(consumer, topic), nil)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	subscribe("billing", f.topic).Close()
	subscribe(pubsub.ParkReader, f.park).Close()
	f.openBilling = func() (driver.Subscription, driver.Topic) {
		park, err := stomppubsub.OpenTopic(t.Context(), addr, stomppubsub.VirtualTopic(f.park), nil)
		if err != nil {
			t.Fatal(err)
		}
		return subscribe("billing", f.topic), park
	}
	return f
}

// newKafkaFixture starts an in-process Kafka cluster with the topic and
// its park topic.
func newKafkaFixture(t *testing.T) *brokerFixture {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	seeds := cluster.ListenAddrs()
	kc, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	topic := "orders." + randomSuffix()
	f := &brokerFixture{t: t, url: "kafka://" + strings.Join(seeds, ","), topic: topic, park: pubsub.ParkTopic(topic)}
	for _, name := range []string{f.topic, f.park} {
		if err := kafkapubsub.CreateTopic(t.Context(), kc, name, kafkapubsub.TopicConfig{Partitions: 2}); err != nil {
			t.Fatal(err)
		}
	}
	f.openBilling = func() (driver.Subscription, driver.Topic) {
		sub, err := kafkapubsub.OpenSubscription(seeds, "billing", f.topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		park, err := kafkapubsub.OpenTopic(seeds, f.park, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sub, park
	}
	f.tailLeft = func() []string {
		groups, err := kadm.NewClient(kc).ListGroups(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(groups.Groups(), func(g string) bool { return !strings.HasPrefix(g, "fjord-tail-") })
	}
	return f
}

// run runs `fjord pubsub ARGS` against the fixture's server.
func (f *brokerFixture) run(stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(f.t.Context(), append([]string{"pubsub", "--broker", f.url}, args...),
		newHarness(f.t).app(strings.NewReader(stdin), &out, &errOut, nil))
	return out.String(), errOut.String(), err
}

func (f *brokerFixture) mustRun(stdin string, args ...string) string {
	f.t.Helper()
	out, errOut, err := f.run(stdin, args...)
	if err != nil {
		f.t.Fatalf("fjord pubsub %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// listParked runs parked list --json and decodes it, sorted by id.
func (f *brokerFixture) listParked(args ...string) []parkedJSON {
	f.t.Helper()
	out := f.mustRun("", append([]string{"parked", "list", "--topic", f.topic, "--wait", "100ms", "--json"}, args...)...)
	var got []parkedJSON
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var p parkedJSON
		if err := dec.Decode(&p); err != nil {
			f.t.Fatalf("decoding %q: %v", out, err)
		}
		if p.FirstFailure == nil || p.LastFailure == nil || p.LastFailure.Before(*p.FirstFailure) {
			f.t.Errorf("parked %s: failure times %v, %v", p.ID, p.FirstFailure, p.LastFailure)
		}
		got = append(got, p)
	}
	slices.SortFunc(got, func(a, b parkedJSON) int { return strings.Compare(a.ID, b.ID) })
	return got
}

// billing runs a Router consuming the fixture's topic as "billing", which
// parks after two failed attempts while failing is set, and reports each
// message handled and parked.
type billing struct {
	failing atomic.Bool
	handled chan *pubsub.Message
	parked  chan pubsub.ParkInfo
}

func (f *brokerFixture) startBilling() *billing {
	t := f.t
	b := &billing{handled: make(chan *pubsub.Message, 10), parked: make(chan pubsub.ParkInfo, 10)}
	b.failing.Store(true)
	sub, park := f.openBilling()
	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "billing", Topic: f.topic, Park: park,
		MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
		Hooks: pubsub.RouterHooks{OnParked: func(pi pubsub.ParkInfo) {
			if pi.Err == nil {
				b.parked <- pi
			}
		}}})
	r.Handle("shop.order.placed", func(ctx context.Context, m *pubsub.Message) error {
		if b.failing.Load() {
			return errors.New("billing is down")
		}
		b.handled <- m
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("router: %v", err)
		}
		sub.Close()
		park.Close()
	})
	return b
}

func (f *brokerFixture) publish(id, subject, data string) {
	f.t.Helper()
	out := f.mustRun("", "publish", "--topic", f.topic, "--type", "shop.order.placed", "--source", "/shop/orders",
		"--id", id, "--subject", subject, "--payload", data)
	if out != id+"\n" {
		f.t.Errorf("publish printed %q, want the id %q", out, id)
	}
}

// TestPubSubParked parks two messages through a real Router, then lists,
// shows, requeues (and sees the requeued copy handled) and discards them
// with the CLI.
func TestPubSubParked(t *testing.T) { forEachBroker(t, testParked) }

func testParked(t *testing.T, f *brokerFixture) {
	b := f.startBilling()
	f.publish("m1", "order/1", `{"total":1200}`)
	f.publish("m2", "order/2", `{"total":7}`)
	for range 2 {
		<-b.parked
	}

	want := []parkedJSON{
		{ID: "m1", Source: "/shop/orders", Type: "shop.order.placed", Subject: "order/1", Attempts: 2, Topic: f.topic, Consumer: "billing"},
		{ID: "m2", Source: "/shop/orders", Type: "shop.order.placed", Subject: "order/2", Attempts: 2, Topic: f.topic, Consumer: "billing"},
	}
	ignore := cmpopts.IgnoreFields(parkedJSON{}, "FirstFailure", "LastFailure", "Reason")
	got := f.listParked()
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Fatalf("parked list (-want +got):\n%s", diff)
	}
	for _, p := range got {
		if !strings.Contains(p.Reason, "billing is down") {
			t.Errorf("parked %s: reason %q does not say why", p.ID, p.Reason)
		}
	}
	if got := f.listParked("--consumer", "shipping"); len(got) != 0 {
		t.Errorf("--consumer shipping listed %+v", got)
	}

	table := f.mustRun("", "parked", "list", "--topic", f.topic, "--wait", "100ms")
	for _, s := range []string{"ID", "REASON", "m1", "m2", "billing is down"} {
		if !strings.Contains(table, s) {
			t.Errorf("parked list table lacks %q:\n%s", s, table)
		}
	}
	shown := f.mustRun("", "parked", "show", "--topic", f.topic, "--wait", "100ms", "m1")
	for _, s := range []string{"id:               m1\n", "subject:          order/1\n", "  attempts:       2\n", "  consumer:       billing\n",
		"billing is down", "key:              order/1\n", "{\n  \"total\": 1200\n}"} {
		if !strings.Contains(shown, s) {
			t.Errorf("parked show lacks %q:\n%s", s, shown)
		}
	}

	b.failing.Store(false)
	if out := f.mustRun("", "parked", "requeue", "--topic", f.topic, "--wait", "100ms", "m1"); out != "requeued m1 to "+f.topic+"\n" {
		t.Errorf("requeue printed %q", out)
	}
	m := <-b.handled
	if m.ID != "m1" || m.Extensions["fjordrequeue"] != "1" || string(m.Data) != `{"total":1200}` {
		t.Errorf("handled %+v, want m1 requeued once with its data", m)
	}
	if diff := cmp.Diff(want[1:], f.listParked(), ignore); diff != "" {
		t.Errorf("parked after requeue (-want +got):\n%s", diff)
	}

	_, stderr, err := f.run("n\n", "parked", "discard", "--topic", f.topic, "--wait", "100ms", "m2")
	if err == nil || !strings.Contains(stderr, "not confirmed") {
		t.Errorf("discard answered no: %v, %q", err, stderr)
	}
	if diff := cmp.Diff(want[1:], f.listParked(), ignore); diff != "" {
		t.Errorf("parked after a discard not confirmed (-want +got):\n%s", diff)
	}
	if out := f.mustRun("y\n", "parked", "discard", "--topic", f.topic, "--wait", "100ms", "m2"); out != "discarded m2\n" {
		t.Errorf("discard printed %q", out)
	}
	if got := f.listParked(); len(got) != 0 {
		t.Errorf("parked after discard: %+v", got)
	}
	_, stderr, _ = f.run("", "parked", "list", "--topic", f.topic, "--wait", "100ms")
	if !strings.Contains(stderr, "no parked messages in "+f.park) {
		t.Errorf("empty list said %q", stderr)
	}
}

// TestPubSubParkedAll requeues and discards every parked message (with
// NATS also with the park subject in the topic's stream: neither the
// parked copies nor the requeued ones are dropped as repeats).
func TestPubSubParkedAll(t *testing.T) { forEachBroker(t, testParkedAll) }

func testParkedAll(t *testing.T, f *brokerFixture) {
	b := f.startBilling()
	for _, id := range []string{"a", "b", "c"} {
		f.publish(id, "order/"+id, `{}`)
		<-b.parked
	}
	out := f.mustRun("", "parked", "discard", "--topic", f.topic, "--wait", "100ms", "--yes", "a", "a")
	if out != "discarded a\n" {
		t.Errorf("discard printed %q", out)
	}
	b.failing.Store(false)
	out = f.mustRun("", "parked", "requeue", "--topic", f.topic, "--wait", "100ms", "--all")
	if strings.Count(out, "requeued ") != 2 {
		t.Errorf("requeue --all printed %q, want two messages", out)
	}
	var got []string
	for range 2 {
		got = append(got, (<-b.handled).ID)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"b", "c"}, got); diff != "" {
		t.Errorf("handled after requeue --all (-want +got):\n%s", diff)
	}
	if got := f.listParked(); len(got) != 0 {
		t.Errorf("parked after requeue --all: %+v", got)
	}
	for _, cmd := range []string{"requeue", "discard"} {
		out, stderr, err := f.run("", "parked", cmd, "--topic", f.topic, "--wait", "100ms", "--all")
		if err != nil || out != "" || !strings.Contains(stderr, "no parked messages in "+f.park) {
			t.Errorf("%s --all with nothing parked: %v, stdout %q, stderr %q", cmd, err, out, stderr)
		}
	}
}

// lineWriter collects output and signals each time it holds a line more.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // an incomplete line: keep it
			return len(p), nil
		}
		w.lines <- line
	}
}

// TestPubSubPublishTail follows a topic and prints what is published.
func TestPubSubPublishTail(t *testing.T) { forEachBroker(t, testPublishTail) }

func testPublishTail(t *testing.T, f *brokerFixture) {
	f.publish("before", "order/0", `{}`) // stored before the tail: not printed
	stdout := &lineWriter{lines: make(chan string, 10)}
	stderr := &lineWriter{lines: make(chan string, 10)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"pubsub", "--broker", f.url, "tail", "--topic", f.topic, "--json"},
			newHarness(t).app(strings.NewReader(""), stdout, stderr, nil))
	}()
	if line := <-stderr.lines; !strings.Contains(line, "waiting for messages") {
		t.Fatalf("tail said %q", line)
	}
	f.publish("t1", "order/1", `{"total": 5}`)
	var got messageJSON
	if err := json.Unmarshal([]byte(<-stdout.lines), &got); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("tail: %v", err)
	}
	want := messageJSON{Attributes: map[string]string{"id": "t1", "source": "/shop/orders", "type": "shop.order.placed",
		"subject": "order/1", "specversion": "1.0", "datacontenttype": "application/json"},
		Key: "order/1", Data: json.RawMessage(`{"total":5}`)}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreMapEntries(func(k, _ string) bool { return k == "time" }),
		cmpopts.IgnoreFields(messageJSON{}, "Published", "Deliveries")); diff != "" {
		t.Errorf("tail printed (-want +got):\n%s", diff)
	}
	if _, err := time.Parse(time.RFC3339Nano, got.Attributes["time"]); err != nil {
		t.Errorf("tail printed time %q: %v", got.Attributes["time"], err)
	}
	if f.tailLeft != nil {
		if left := f.tailLeft(); len(left) != 0 {
			t.Errorf("consumers left after tail: %v", left)
		}
	}
}

// TestPubSubEmbedded publishes to the embedded NATS store in the data
// directory, and names the way out when serve has that store open.
func TestPubSubEmbedded(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "nats")
	srv, err := natsembed.Start(t.Context(), &natsembed.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := srv.Connect()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders"}}); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Close()

	h := newHarness(t)
	var stdout, stderr bytes.Buffer
	args := []string{"--data", data, "pubsub", "publish", "--topic", "orders", "--type", "t", "--source", "/s", "--id", "e1"}
	if err := run(t.Context(), args, h.app(strings.NewReader(""), &stdout, &stderr, nil)); err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr.String())
	}

	part, err := startNATS(t.Context(), natsFlags{}, data, false, slog.New(slog.DiscardHandler)) // as serve does
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	stderr.Reset()
	err = run(t.Context(), args, h.app(strings.NewReader(""), io.Discard, &stderr, nil))
	for _, s := range []string{"in use", "--nats-listen", "--broker nats://"} {
		if err == nil || !strings.Contains(stderr.String(), s) {
			t.Errorf("publish while serve has the store: %v, %q; want an error naming %q", err, stderr.String(), s)
		}
	}
	nc, _ = part.server.Connect()
	defer nc.Close()
	js, _ = jetstream.New(nc)
	s, err := js.Stream(t.Context(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("the embedded store holds %d messages, want the one published", n)
	}
}

func TestPubSubErrors(t *testing.T) {
	f := newNATSFixture(t, false)
	kf := newKafkaFixture(t)
	pub := []string{"publish", "--type", "t", "--source", "/s"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scheme", []string{"--broker", "mqtt://u:secret@h/", "tail", "--topic", "x"}, `unknown scheme "mqtt"`},
		{"NATS unreachable", []string{"--broker", "nats://u:secret@127.0.0.1:1", "tail", "--topic", "x"}, "broker unreachable"},
		{"RabbitMQ unreachable", []string{"--broker", "amqp://u:secret@127.0.0.1:1/", "tail", "--topic", "x"}, "broker unreachable"},
		{"Kafka unreachable", []string{"--broker", "kafka://127.0.0.1:1", "tail", "--topic", "x"}, "broker unreachable"},
		{"unknown Kafka topic", append(pub, "--broker", kf.url, "--topic", "nope"), `unknown topic "nope": Kafka at 127.0.0.1:`},
		{"STOMP unreachable", []string{"--broker", "stomp://u:secret@127.0.0.1:1", "tail", "--topic", "x"}, "broker unreachable"},
		{"not a URL", []string{"--broker", "127.0.0.1:4222", "tail", "--topic", "x"}, "want a URL"},
		{"unknown topic", append(pub, "--topic", "nope"), `unknown topic "nope"`},
		{"unknown park destination", []string{"parked", "list", "--topic", "nope"}, "give --park"},
		{"payload not JSON", append(pub, "--topic", f.topic, "--payload", "{oops"), "--payload is not JSON"},
		{"payload file not JSON", append(pub, "--topic", f.topic, "--payload-file", "pubsub_test.go"), "--payload-file pubsub_test.go is not JSON"},
		{"payload twice", append(pub, "--topic", f.topic, "--payload", "{}", "--payload-file", "x"), "not both"},
		{"no type", []string{"publish", "--topic", f.topic, "--source", "/s"}, "missing --type"},
		{"bad extension", append(pub, "--topic", f.topic, "--ext", "Bad=1"), `"Bad" is not a valid extension name`},
		{"parked without topic", []string{"parked", "list"}, "missing --topic"},
		{"ids and all", []string{"parked", "requeue", "--topic", f.topic, "--all", "m1"}, "not both"},
		{"neither ids nor all", []string{"parked", "discard", "--topic", f.topic}, "missing ID"},
		{"unknown id", []string{"parked", "show", "--topic", f.topic, "--wait", "50ms", "m9"}, `no parked message with id "m9"`},
		{"tail from", []string{"tail", "--topic", f.topic, "--from", "3"}, "invalid --from"},
	}
	if url := os.Getenv("FJORD_TEST_RABBITMQ"); url != "" {
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"unknown exchange", append(pub, "--broker", url, "--topic", "fjord-cli-none"), `has no exchange "fjord-cli-none"`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := f.run("", tt.args...)
			if err == nil || !strings.Contains(stderr, tt.want) {
				t.Errorf("fjord pubsub %v: %v, stderr %q; want an error naming %q", tt.args, err, stderr, tt.want)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("the error shows the password: %q", stderr)
			}
		})
	}
}
