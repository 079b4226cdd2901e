package rollout

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fjord-data/fjord/refdata"
)

// Incoming is one encoded bundle offered by a Feed.
type Incoming struct {
	Origin string // where it came from, for reports: "stream refdata-bundles@3", "dir /x/a.bundle"
	Data   []byte
}

// Feed offers bundles. Bundles yields them in the order they were
// published until ctx ends (then it stops, with or without yielding
// ctx.Err()) or it fails.
type Feed interface {
	Bundles(ctx context.Context) iter.Seq2[Incoming, error]
}

// Status is the outcome of one offered bundle.
type Status struct {
	Instance string                // WatcherOptions.Instance
	Origin   string                // Incoming.Origin
	Version  string                // the bundle's version, "" when it could not be decoded
	Applied  bool                  // false: rejected
	Reason   string                // why it was rejected
	Datasets []refdata.DatasetInfo // applied datasets
	Held     []string              // datasets kept by pins
	Current  string                // the snapshot version in force afterwards
	Time     time.Time
}

// StatusSink records outcomes, for example on an event-store stream.
type StatusSink interface {
	Report(ctx context.Context, st Status) error
}

// WatcherOptions configure a Watcher. The zero value works but trusts no
// key, so every bundle is rejected.
type WatcherOptions struct {
	// Trusted are the public keys whose signatures are accepted.
	Trusted []ed25519.PublicKey
	// Status receives every outcome; nil records none.
	Status StatusSink
	// Instance names this process in reports (default: the host name).
	Instance string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// OnStatus, when set, sees every outcome after it was reported.
	OnStatus func(Status)
}

// Watcher takes bundles from feeds and applies them to a Registry, one at a
// time, in the order each feed offers them.
type Watcher struct {
	reg   *refdata.Registry
	feeds []Feed
	opts  WatcherOptions
	mu    sync.Mutex // serializes apply and report, so reports follow apply order
}

// NewWatcher returns a watcher of feeds for reg. opts may be nil.
func NewWatcher(reg *refdata.Registry, feeds []Feed, opts *WatcherOptions) *Watcher {
	var o WatcherOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Instance == "" {
		o.Instance, _ = os.Hostname()
	}
	return &Watcher{reg: reg, feeds: feeds, opts: o}
}

// Run reads every feed until ctx ends, then returns nil; if a feed or the
// status sink fails first, Run stops the others and returns that error. A
// rejected bundle is not an error: it is reported and changes nothing.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(w.feeds))
	for _, f := range w.feeds {
		go func() { errs <- w.follow(ctx, f) }()
	}
	var first error
	for range w.feeds {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (w *Watcher) follow(ctx context.Context, f Feed) error {
	for in, err := range f.Bundles(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := w.Offer(ctx, in); err != nil {
			return err
		}
	}
	return nil
}

// Offer applies one bundle as Run does and reports the outcome; the error
// is the status sink's, never the bundle's.
func (w *Watcher) Offer(ctx context.Context, in Incoming) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{Instance: w.opts.Instance, Origin: in.Origin, Time: time.Now().UTC()}
	b, err := refdata.DecodeBundle(in.Data)
	if err == nil {
		st.Version = b.Version
		if err = Verify(b, w.opts.Trusted...); err == nil {
			var res refdata.Result
			res, err = w.reg.Apply(b)
			st.Datasets, st.Held = res.Applied, res.Held
		}
	}
	st.Applied = err == nil
	if err != nil {
		st.Reason = err.Error()
		w.opts.Logger.Warn("rollout: bundle rejected", "origin", in.Origin, "version", st.Version, "reason", st.Reason)
	} else {
		w.opts.Logger.Info("rollout: bundle applied", "origin", in.Origin, "version", st.Version)
	}
	st.Current = w.reg.Current().Version()
	if w.opts.Status != nil {
		if err := w.opts.Status.Report(ctx, st); err != nil {
			return fmt.Errorf("rollout: reporting the outcome of %s: %w", in.Origin, err)
		}
	}
	if w.opts.OnStatus != nil {
		w.opts.OnStatus(st)
	}
	return nil
}

// DirFeed offers the files named *.bundle in a directory, in name order,
// each once per name, size and modification time; it looks again every
// Interval (default 10s). Files that cannot be read are skipped until the
// next look.
type DirFeed struct {
	Dir      string
	Interval time.Duration
}

// Bundles implements Feed.
func (d DirFeed) Bundles(ctx context.Context) iter.Seq2[Incoming, error] {
	return func(yield func(Incoming, error) bool) {
		every := d.Interval
		if every <= 0 {
			every = 10 * time.Second
		}
		seen := map[string]string{}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, in := range d.scan(seen) {
				if !yield(in, nil) {
					return
				}
			}
			select {
			case <-ctx.Done():
				yield(Incoming{}, ctx.Err())
				return
			case <-t.C:
			}
		}
	}
}

// scan returns the files that are new or changed since the last scan.
func (d DirFeed) scan(seen map[string]string) []Incoming {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var out []Incoming
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".bundle") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		stamp := fmt.Sprint(info.Size(), info.ModTime().UnixNano())
		if seen[e.Name()] == stamp {
			continue
		}
		path := filepath.Join(d.Dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		seen[e.Name()] = stamp
		out = append(out, Incoming{Origin: "dir " + path, Data: data})
	}
	return out
}
