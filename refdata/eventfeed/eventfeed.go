// Package eventfeed carries refdata bundles over the event store: it
// publishes bundles to a stream, offers them to a rollout.Watcher as a
// Feed, and records the watcher's outcomes on a status stream as a
// rollout.StatusSink.
//
//	feed := eventfeed.New(store, nil)
//	w := refdata.NewWatcher(reg, []rollout.Feed{feed}, &refdata.WatcherOptions{Trusted: keys, Status: feed})
//	go w.Run(ctx)
//	…
//	_, err := feed.Publish(ctx, signedBundle) // from another process: fjord refdata publish
package eventfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/google/uuid"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/wire"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// Stream names and event types.
const (
	DefaultStream       eventstore.StreamID = "refdata-bundles"
	DefaultStatusStream eventstore.StreamID = "refdata-status"

	EventBundlePublished = "RefdataBundlePublished"
	EventBundleApplied   = "RefdataBundleApplied"
	EventBundleRejected  = "RefdataBundleRejected"

	// ContentType is that of a published bundle: its encoding, gzipped.
	ContentType = wire.ContentType
)

// bundleID derives an event ID from a bundle's contents, so that
// publishing the same bundle twice appends it once.
func bundleID(data []byte) uuid.UUID {
	namespace := uuid.UUID{0x6f, 0x0b, 0x7a, 0x38, 0x5d, 0x4e, 0x4b, 0x7e, 0x9a, 0x55, 0x1c, 0x1c, 0x0f, 0x6f, 0x7a, 0x01}
	return uuid.NewSHA1(namespace, data)
}

// Options name the streams. The zero value uses the defaults.
type Options struct {
	Stream       eventstore.StreamID // bundles; default DefaultStream
	StatusStream eventstore.StreamID // outcomes; default DefaultStatusStream
}

// Feed publishes and offers bundles on one stream and records outcomes on
// another. It is safe for concurrent use.
type Feed struct {
	store *eventstore.Store
	opts  Options
}

// New returns a Feed over store. opts may be nil.
func New(store *eventstore.Store, opts *Options) *Feed {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.StatusStream == "" {
		o.StatusStream = DefaultStatusStream
	}
	return &Feed{store: store, opts: o}
}

// Publish appends an encoded bundle to the stream after checking that it
// decodes and is signed (the watchers verify the key). Publishing the same
// bytes again appends nothing and returns the original result.
func (f *Feed) Publish(ctx context.Context, data []byte) (eventstore.AppendResult, error) {
	b, err := refdata.DecodeBundle(data)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if b.Signature == nil {
		return eventstore.AppendResult{}, fmt.Errorf("%w (version %s): sign it first", refdata.ErrUnsigned, b.Version)
	}
	z, err := wire.Zip(data)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	meta, _ := json.Marshal(map[string]string{"version": b.Version})
	e := eventstore.Event{ID: bundleID(data), Type: EventBundlePublished, ContentType: ContentType,
		Data: z, Metadata: meta}
	return f.store.Append(ctx, f.opts.Stream, eventstore.ExpectedVersion{}, e)
}

// Bundles implements rollout.Feed: every bundle published on the stream,
// from the first, then new ones as they are appended. Events of other
// types are skipped; a bundle event whose data cannot be unzipped is
// offered as is, for the watcher to reject.
func (f *Feed) Bundles(ctx context.Context) iter.Seq2[rollout.Incoming, error] {
	return func(yield func(rollout.Incoming, error) bool) {
		for d, err := range f.store.Subscribe(ctx, eventstore.SubscribeOptions{Stream: f.opts.Stream}) {
			if err != nil {
				yield(rollout.Incoming{}, err)
				return
			}
			if d.Kind != eventstore.DeliveredEvent || d.Event.Type != EventBundlePublished {
				continue
			}
			in := rollout.Incoming{Origin: fmt.Sprintf("stream %s@%d", f.opts.Stream, d.Event.Version), Data: wire.Unzip(d.Event.Data)}
			if !yield(in, nil) {
				return
			}
		}
	}
}

// Report implements rollout.StatusSink: it appends RefdataBundleApplied or
// RefdataBundleRejected to the status stream.
func (f *Feed) Report(ctx context.Context, st rollout.Status) error {
	data, err := wire.StatusJSON(st)
	if err != nil {
		return err
	}
	typ := EventBundleRejected
	if st.Applied {
		typ = EventBundleApplied
	}
	_, err = f.store.Append(ctx, f.opts.StatusStream, eventstore.ExpectedVersion{}, eventstore.Event{Type: typ, Data: data})
	return err
}

// Compile-time guards.
var (
	_ rollout.Feed       = (*Feed)(nil)
	_ rollout.StatusSink = (*Feed)(nil)
)
