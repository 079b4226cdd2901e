// Package topicfeed carries refdata bundles over a pubsub topic: Publish
// sends a signed bundle as a message, a Feed offers the bundles of a
// subscription to a rollout.Watcher, and, as the watcher's
// rollout.StatusSink, publishes each outcome to a status topic. It is the
// messaging counterpart of refdata/eventfeed, for services that share a
// broker rather than an event store.
//
//	// the publisher (fjord refdata publish, or a release job):
//	_, err := topicfeed.Publish(ctx, bundles, signedBundle, nil)
//
//	// each instance, on a subscription of its own:
//	feed := topicfeed.New(b.Subscription("refdata.bundles", instance), statusTopic,
//		&topicfeed.Options{Topic: "refdata.bundles", Consumer: instance, Keep: dataDir + "/refdata"})
//	w := rollout.NewWatcher(reg, []rollout.Feed{feed}, &rollout.WatcherOptions{Trusted: keys, Status: feed})
//	go w.Run(ctx) // in main's errgroup
//
// Every instance must see every bundle, so each reads the bundle topic
// through a subscription of its own (a fan-out), not a shared queue.
//
// # Size
//
// A bundle travels gzipped, in one message. The complete built-in data
// (every dataset) encodes to about 396 kB and gzips to about 140 kB; a
// bundle usually carries a few datasets and is smaller. Brokers bound a
// message: NATS max_payload defaults to 1 MiB (headers included), Kafka's
// message.max.bytes to about 1 MB. Publish refuses a message whose data is
// over Options.MaxBytes (default DefaultMaxBytes, 1 MiB less 16 KiB for
// the attributes) with ErrTooLarge rather than have the broker drop it.
//
// # Restarts
//
// A broker forgets the messages a subscription acknowledged, and a
// Registry lives in memory: after a restart the topic no longer offers the
// bundles applied before. With Options.Keep, the feed writes every bundle
// it offered that was applied to that directory, and offers them again, in
// order, before the topic's.
package topicfeed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/fjord-data/fjord/pubsub"
	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/wire"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// Message types, source and content type.
const (
	TypeBundlePublished = "fjord.refdata.bundle.published"
	TypeBundleApplied   = "fjord.refdata.bundle.applied"
	TypeBundleRejected  = "fjord.refdata.bundle.rejected"

	// DefaultSource is the CloudEvents source of bundle and status
	// messages.
	DefaultSource = "/fjord/refdata"

	// ContentType is that of a bundle message: its encoding, gzipped.
	ContentType = wire.ContentType

	// DefaultMaxBytes bounds a bundle message's data: 1 MiB (the usual
	// broker limit) less 16 KiB for its attributes.
	DefaultMaxBytes = 1<<20 - 16<<10
)

// ErrTooLarge is matched by the error of publishing a bundle whose message
// would be over Options.MaxBytes.
var ErrTooLarge = errors.New("topicfeed: bundle message too large")

// Options configure Publish and a Feed. The zero value works.
type Options struct {
	// Source is the CloudEvents source of the messages (default
	// DefaultSource).
	Source string
	// MaxBytes bounds a bundle message's data, gzipped (default
	// DefaultMaxBytes).
	MaxBytes int
	// Topic and Consumer name the bundle topic and this subscriber, in
	// Origins, logs and parked messages.
	Topic, Consumer string
	// Park receives bundle-topic messages that are not valid CloudEvents;
	// without it they are kept and retried. A Feed does not close it.
	Park driver.Topic
	// Keep is a directory where the feed keeps the bundles it offered that
	// were applied, to offer them again after a restart ("" keeps none).
	Keep string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Source == "" {
		out.Source = DefaultSource
	}
	if out.MaxBytes <= 0 {
		out.MaxBytes = DefaultMaxBytes
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// Publish sends an encoded bundle to topic after checking that it decodes
// and is signed (the watchers verify the key), and returns the message
// sent. The message's ID is derived from the bundle's bytes, so a broker
// or inbox that deduplicates drops the same bundle published twice; its
// subject is the bundle's version. The error matches ErrTooLarge when the
// gzipped bundle is over opts.MaxBytes, and is the topic's otherwise.
func Publish(ctx context.Context, topic *pubsub.Topic, data []byte, opts *Options) (*pubsub.Message, error) {
	o := opts.withDefaults()
	b, err := refdata.DecodeBundle(data)
	if err != nil {
		return nil, err
	}
	if b.Signature == nil {
		return nil, fmt.Errorf("%w (version %s): sign it first", refdata.ErrUnsigned, b.Version)
	}
	z, err := wire.Zip(data)
	if err != nil {
		return nil, err
	}
	if len(z) > o.MaxBytes {
		return nil, fmt.Errorf("%w: bundle %s is %d bytes gzipped (%d encoded), over the limit of %d: split it by dataset",
			ErrTooLarge, b.Version, len(z), len(data), o.MaxBytes)
	}
	sum := sha256.Sum256(data)
	m := &pubsub.Message{ID: hex.EncodeToString(sum[:16]), Source: o.Source, Type: TypeBundlePublished,
		Subject: b.Version, Key: "refdata-bundles", DataContentType: ContentType, Data: z, Time: b.Created}
	if err := topic.Publish(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Feed offers the bundles of a subscription to a rollout.Watcher and
// records the watcher's outcomes on a status topic. A bundle message is
// acknowledged once the watcher has applied or rejected it and reported
// the outcome; when the report fails, or the watcher stops first, the
// message is given back and offered again later (a watcher that already
// applied it rejects it then as stale). Messages of other types are
// acknowledged and skipped. It is safe for concurrent use;
// run one Bundles at a time.
type Feed struct {
	sub    driver.Subscription
	status *pubsub.Topic
	opts   Options
	mu     struct {
		sync.Mutex
		offered map[string][]byte // origin → bundle, until its outcome is reported
	}
}

// New returns a Feed reading bundles through sub and publishing outcomes
// to status (nil: none are published). The caller keeps ownership of sub
// and status and closes them after the watcher stops. opts may be nil.
func New(sub driver.Subscription, status *pubsub.Topic, opts *Options) *Feed {
	f := &Feed{sub: sub, status: status, opts: opts.withDefaults()}
	f.mu.offered = map[string][]byte{}
	return f
}

// errStopped is a bundle handler's error when the watcher stopped before
// taking the bundle: the message is given back, not acknowledged.
var errStopped = errors.New("topicfeed: the watcher stopped before taking the bundle")

// offer is a bundle handed from the Router's handler to Bundles' caller.
type offer struct {
	in    rollout.Incoming
	taken chan bool // true once the watcher has applied or rejected it
}

// Bundles implements rollout.Feed: the bundles kept in Options.Keep first,
// then those the subscription delivers, in order, until ctx ends or the
// subscription fails. A bundle message whose data does not unzip is
// offered as it is, for the watcher to reject.
func (f *Feed) Bundles(ctx context.Context) iter.Seq2[rollout.Incoming, error] {
	return func(yield func(rollout.Incoming, error) bool) {
		kept, err := f.kept()
		if err != nil {
			yield(rollout.Incoming{}, err)
			return
		}
		for _, in := range kept {
			if !yield(in, nil) {
				return
			}
		}
		ctx, cancel := context.WithCancel(ctx)
		offers := make(chan offer)
		r := pubsub.NewRouter(f.sub, &pubsub.RouterOptions{Consumer: f.opts.Consumer, Topic: f.opts.Topic, Park: f.opts.Park,
			Concurrency: 1, MaxInFlight: 4, HandlerTimeout: -1, Unhandled: pubsub.AckUnhandled, Logger: f.opts.Logger})
		r.Handle(TypeBundlePublished, func(hctx context.Context, m *pubsub.Message) error {
			o := offer{in: rollout.Incoming{Origin: f.origin(m), Data: wire.Unzip(m.Data)}, taken: make(chan bool, 1)}
			select {
			case offers <- o:
			case <-hctx.Done():
				return hctx.Err()
			}
			if !<-o.taken {
				return errStopped
			}
			return nil
		})
		stopped := make(chan error, 1)
		go func() { stopped <- r.Run(ctx) }()
		defer func() {
			cancel()
			<-stopped
		}()
		for {
			select {
			case o := <-offers:
				f.remember(o.in)
				more := yield(o.in, nil)
				f.forget(o.in.Origin)
				o.taken <- more
				if !more {
					return
				}
			case err := <-stopped:
				stopped <- err // for the deferred receive
				if ctx.Err() == nil {
					yield(rollout.Incoming{}, fmt.Errorf("topicfeed: receiving bundles from %s: %w", f.opts.Topic, err))
				}
				return
			}
		}
	}
}

func (f *Feed) origin(m *pubsub.Message) string {
	return fmt.Sprintf("topic %s message %s (version %s)", f.opts.Topic, m.ID, m.Subject)
}

func (f *Feed) remember(in rollout.Incoming) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.offered[in.Origin] = in.Data
}

func (f *Feed) forget(origin string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mu.offered, origin)
}

// Report implements rollout.StatusSink: it keeps an applied bundle this
// feed offered (Options.Keep), then publishes the outcome to the status
// topic as a TypeBundleApplied or TypeBundleRejected message whose subject
// is the instance and whose data is JSON (the fields of eventfeed's status
// events).
func (f *Feed) Report(ctx context.Context, st rollout.Status) error {
	f.mu.Lock()
	data, ours := f.mu.offered[st.Origin]
	f.mu.Unlock()
	if ours && st.Applied && f.opts.Keep != "" {
		if err := f.keep(st.Version, data); err != nil {
			return err
		}
	}
	if f.status == nil {
		return nil
	}
	js, err := wire.StatusJSON(st)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	m := &pubsub.Message{ID: id.String(), Source: f.opts.Source, Type: TypeBundleRejected, Subject: st.Instance,
		Time: st.Time, DataContentType: "application/json", Data: js}
	if st.Applied {
		m.Type = TypeBundleApplied
	}
	return f.status.Publish(ctx, m)
}

// keep writes an applied bundle to the Keep directory, after those kept
// before it (file names are a zero-padded sequence, then the version).
func (f *Feed) keep(version string, data []byte) error {
	if err := os.MkdirAll(f.opts.Keep, 0o755); err != nil {
		return fmt.Errorf("topicfeed: keeping bundle %s: %w", version, err)
	}
	names, err := f.keptNames()
	if err != nil {
		return err
	}
	name := filepath.Join(f.opts.Keep, fmt.Sprintf("%08d-%s.bundle", len(names)+1, strings.ReplaceAll(version, string(filepath.Separator), "_")))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("topicfeed: keeping bundle %s: %w", version, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("topicfeed: keeping bundle %s: %w", version, err)
	}
	return nil
}

func (f *Feed) keptNames() ([]string, error) {
	entries, err := os.ReadDir(f.opts.Keep)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("topicfeed: reading kept bundles: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".bundle") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// kept returns the kept bundles in the order they were applied.
func (f *Feed) kept() ([]rollout.Incoming, error) {
	if f.opts.Keep == "" {
		return nil, nil
	}
	names, err := f.keptNames()
	if err != nil {
		return nil, err
	}
	out := make([]rollout.Incoming, 0, len(names))
	for _, n := range names {
		path := filepath.Join(f.opts.Keep, n)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("topicfeed: reading kept bundle: %w", err)
		}
		out = append(out, rollout.Incoming{Origin: "kept " + path, Data: data})
	}
	return out, nil
}

// Compile-time guards.
var (
	_ rollout.Feed       = (*Feed)(nil)
	_ rollout.StatusSink = (*Feed)(nil)
)
