package outbox_test

// The chaos test's broker: an embedded NATS server with JetStream on a
// random loopback port, which the test's processes reach over TCP. Messages
// travel as JSON-encoded pubsub.Messages (the test needs a broker, not a
// wire format: natspubsub maps the envelope to NATS headers).

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fjord-data/fjord/pubsub"
)

// startNATS starts an embedded NATS server with JetStream storing under
// dir, stopped at cleanup, and returns its client URL.
func startNATS(t *testing.T, dir string) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// createStream creates the stream that keeps every message of subject.
func createStream(ctx context.Context, url, stream, subject string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage})
	return err
}

// natsPublisher publishes to a JetStream subject and waits for the
// stream's acknowledgement of every message.
type natsPublisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

func newNATSPublisher(url, subject string) (*natsPublisher, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsPublisher{nc: nc, js: js, subject: subject}, nil
}

func (p *natsPublisher) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: p.subject, Data: data})
		if err != nil {
			return fmt.Errorf("publishing %s: %w", m.ID, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publishing: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *natsPublisher) Close() { p.nc.Close() }

// streamReader reads a stream in order from a sequence on.
type streamReader struct {
	nc   *nats.Conn
	cons jetstream.Consumer
}

// received is a message read from the stream with its stream sequence.
type received struct {
	seq uint64
	msg *pubsub.Message
}

func newStreamReader(ctx context.Context, url, stream string, from uint64) (*streamReader, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(from, 1)})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &streamReader{nc: nc, cons: cons}, nil
}

// next returns up to max messages, waiting at most wait for the first.
func (r *streamReader) next(max int, wait time.Duration) ([]received, error) {
	batch, err := r.cons.Fetch(max, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, err
	}
	var got []received
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		var pm pubsub.Message
		if err := json.Unmarshal(m.Data(), &pm); err != nil {
			return nil, fmt.Errorf("stream message %d: %w", md.Sequence.Stream, err)
		}
		got = append(got, received{md.Sequence.Stream, &pm})
	}
	return got, batch.Error()
}

func (r *streamReader) Close() { r.nc.Close() }
