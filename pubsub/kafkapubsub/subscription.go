package kafkapubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// SubscriptionOptions configures OpenSubscription. The zero value works.
type SubscriptionOptions struct {
	// ClientOptions are added to the options of the client
	// OpenSubscription creates: TLS, SASL, session timeouts, fetch sizes,
	// balancers. The group options the subscription relies on (manual
	// commits, blocking rebalances on poll, its partition callbacks) must not
	// be overridden.
	ClientOptions []kgo.Opt
	// StartAtEnd makes a group without a committed offset start at the end
	// of each partition. By default it starts at the beginning, so that a
	// new group gets the messages sent before its first member joined.
	StartAtEnd bool
	// Logger receives commit failures in partition revocations, which no
	// caller sees otherwise (nil: discard).
	Logger *slog.Logger
}

// Subscription is one member of a Kafka consumer group reading one topic.
// It implements driver.Subscription and is safe for concurrent use
// (Receive calls take turns).
//
// Acknowledgement: Ack commits, per partition, the lowest offset not yet
// acknowledged (never past an unacknowledged message), and records the
// offsets acknowledged above it in the commit's metadata, so that after a
// close, a crash or a rebalance the member that takes the partition gets
// every unacknowledged message again and no acknowledged one.
//
// Nack: Kafka has no per-message negative acknowledgement. Nack marks the
// messages pending and makes the partition seek back to the lowest pending
// offset on the next Receive; the records between it and where the
// partition had got to are fetched again, and only the pending ones are
// handed out again (those in flight or acknowledged are skipped).
//
// Rebalances: when partitions are revoked, their acknowledged offsets are
// committed and their messages in flight forgotten (their Acks no longer
// commit; the next owner receives them again). Lost partitions (a member
// thrown out of the group) are forgotten without a commit.
//
// Received messages carry PublishTime from the record timestamp (the
// producer's create time unless the topic uses log-append time) and
// Deliveries 0: Kafka does not count deliveries.
type Subscription struct {
	client *kgo.Client
	topic  string
	group  string
	log    *slog.Logger

	// turn is held by the Receive in progress.
	turn chan struct{}
	// commitMu orders commits from Ack with the commit of a revocation, so
	// that no commit for a partition lands after it was revoked. Lock order:
	// commitMu, then mu.
	commitMu sync.Mutex
	mu       struct {
		sync.Mutex
		tracker *tracker
		// wake cancels the poll of the Receive in progress, so that a Nack
		// or Close is acted on at once.
		wake   context.CancelFunc
		closed bool
	}
	closeOnce sync.Once
}

// OpenSubscription joins the consumer group group on topic with a new
// client of the brokers at seeds. It does not wait for the group's first
// rebalance: Receive does. Close leaves the group and closes the client.
func OpenSubscription(seeds []string, group, topic string, opts *SubscriptionOptions) (*Subscription, error) {
	if opts == nil {
		opts = &SubscriptionOptions{}
	}
	if group == "" || topic == "" {
		return nil, fmt.Errorf("kafkapubsub: OpenSubscription: empty group (%q) or topic (%q)", group, topic)
	}
	s := &Subscription{topic: topic, group: group, log: opts.Logger, turn: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mu.tracker = newTracker()
	start := kgo.NewOffset().AtStart()
	if opts.StartAtEnd {
		start = kgo.NewOffset().AtEnd()
	}
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnOffsetsFetched(s.onOffsetsFetched),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
	}, opts.ClientOptions...)
	client, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafkapubsub: OpenSubscription %q on %q: %w", group, topic, err)
	}
	s.client = client
	return s, nil
}

// Receive waits until at least one message is available or ctx ends, and
// returns between 1 and max of them. It returns ctx.Err() when ctx ends
// first, and an error matching ErrClosed after Close.
func (s *Subscription) Receive(ctx context.Context, max int) ([]*driver.Message, error) {
	if max <= 0 {
		return nil, fmt.Errorf("kafkapubsub: receive: max is %d, want at least 1", max)
	}
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		pollCtx, cancel := context.WithCancel(ctx)
		open, seek := s.setWake(cancel)
		if !open {
			cancel()
			return nil, s.closedErr("receive")
		}
		if seek {
			// A poll with a canceled context returns at once, blocking
			// rebalances until AllowRebalance: take seeks in that window.
			cancel()
		}
		fetches := s.client.PollRecords(pollCtx, max)
		// Until AllowRebalance no revocation runs: seek and filter against
		// the partitions this member still owns.
		msgs := s.take(fetches)
		s.client.AllowRebalance()
		s.setWake(nil)
		cancel()
		if len(msgs) > 0 {
			return msgs, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := fetchError(fetches); err != nil {
			if errors.Is(err, kgo.ErrClientClosed) {
				return nil, s.closedErr("receive")
			}
			return nil, fmt.Errorf("kafkapubsub: receive from topic %q: %w", s.topic, err)
		}
	}
}

// setWake installs the cancel func of the poll in progress. It reports
// whether the subscription is open, and whether a nack waits for its
// partition to seek back.
func (s *Subscription) setWake(cancel context.CancelFunc) (open, seek bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.wake = cancel
	return !s.mu.closed, s.mu.tracker.seekPending()
}

// take applies the seeks nacks asked for and returns the polled records to
// hand out.
func (s *Subscription) take(fetches kgo.Fetches) []*driver.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []*driver.Message
	fetches.EachRecord(func(r *kgo.Record) {
		if r.Topic == s.topic && s.mu.tracker.deliver(r.Partition, r.Offset) {
			msgs = append(msgs, fromRecord(r))
		}
	})
	if seeks := s.mu.tracker.seeks(); len(seeks) > 0 {
		to := make(map[int32]kgo.EpochOffset, len(seeks))
		for p, o := range seeks {
			to[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		s.client.SetOffsets(map[string]map[int32]kgo.EpochOffset{s.topic: to})
	}
	return msgs
}

// fetchError returns the first error of fetches that is not a context's.
func fetchError(fetches kgo.Fetches) error {
	var first error
	fetches.EachError(func(_ string, _ int32, err error) {
		if first == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			first = err
		}
	})
	return first
}

// Ack marks messages acknowledged and commits, for each partition they
// belong to, the lowest offset not yet acknowledged with the acknowledged
// offsets above it. Messages of partitions revoked since they were received
// are skipped: they come again to the partition's next owner. Ack returns
// once the commit is done; on error the acknowledgements stay recorded and
// the next Ack, or the revocation, commits them.
func (s *Subscription) Ack(ctx context.Context, ids []driver.AckID) error {
	return s.settle(ctx, "ack", ids, (*tracker).ack)
}

// Nack gives messages back: the next Receive seeks their partitions back to
// the lowest one and hands them out again (see Subscription). It commits
// nothing.
func (s *Subscription) Nack(ctx context.Context, ids []driver.AckID) error {
	return s.settle(ctx, "nack", ids, (*tracker).nack)
}

func (s *Subscription) settle(ctx context.Context, op string, ids []driver.AckID, mark func(*tracker, int32, int64) bool) error {
	if op == "ack" {
		s.commitMu.Lock()
		defer s.commitMu.Unlock()
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return s.closedErr(op)
	}
	touched := make(map[int32]bool)
	for _, id := range ids {
		a, ok := id.(ackID)
		if !ok || a.topic != s.topic {
			s.mu.Unlock()
			return fmt.Errorf("kafkapubsub: %s: %v is not an AckID of topic %q", op, id, s.topic)
		}
		if mark(s.mu.tracker, a.partition, a.offset) {
			touched[a.partition] = true
		}
	}
	if op == "nack" {
		if s.mu.wake != nil && len(touched) > 0 {
			s.mu.wake()
		}
		s.mu.Unlock()
		return nil
	}
	commits := s.mu.tracker.toCommit(slices.Collect(maps.Keys(touched)))
	s.mu.Unlock()
	return s.commit(ctx, commits)
}

// commit commits offsets with their metadata and records what succeeded.
// The caller holds commitMu.
func (s *Subscription) commit(ctx context.Context, commits map[int32]commit) error {
	if len(commits) == 0 {
		return nil
	}
	offsets := make(map[int32]kgo.EpochOffset, len(commits))
	for p, c := range commits {
		offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: c.offset}
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				rp := &req.Topics[i].Partitions[j]
				if c, ok := commits[rp.Partition]; ok && c.meta != "" {
					meta := c.meta
					rp.Metadata = &meta
				}
			}
		}
		return nil
	})
	var errs []error
	failed := make(map[int32]bool)
	s.client.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{s.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
						errs = append(errs, fmt.Errorf("partition %d: %w", p.Partition, err))
						failed[p.Partition] = true
					}
				}
			}
		})
	if len(errs) > 0 && len(failed) == 0 {
		return fmt.Errorf("kafkapubsub: commit group %q on topic %q: %w", s.group, s.topic, errors.Join(errs...))
	}
	s.mu.Lock()
	for p, c := range commits {
		if !failed[p] {
			s.mu.tracker.committed(p, c)
		}
	}
	s.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("kafkapubsub: commit group %q on topic %q: %w", s.group, s.topic, errors.Join(errs...))
	}
	return nil
}

// onOffsetsFetched seeds the tracker with the group's committed offsets and
// the acknowledgements recorded in their metadata, before fetching starts.
func (s *Subscription) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	type seed struct {
		offset int64
		meta   string
	}
	seeds := make(map[int32]seed)
	add := func(topic string, p int32, offset int64, meta *string) {
		if (topic != s.topic && topic != "") || offset < 0 {
			return
		}
		sd := seed{offset: offset}
		if meta != nil {
			sd.meta = *meta
		}
		seeds[p] = sd
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				add(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			add(t.Topic, p.Partition, p.Offset, p.Metadata)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, sd := range seeds {
		spans, err := decodeAckMeta(sd.offset, sd.meta)
		if err != nil {
			s.log.Warn("kafkapubsub: ignoring the acknowledgements in a commit's metadata: messages acknowledged out of order may come again",
				"group", s.group, "topic", s.topic, "partition", p, "err", err)
		}
		s.mu.tracker.seed(p, sd.offset, spans, sd.meta)
	}
	return nil
}

// onRevoked commits what was acknowledged on the revoked partitions and
// forgets them. kgo calls it in rebalances and when Close leaves the group.
func (s *Subscription) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := revoked[s.topic]
	if len(parts) == 0 {
		return
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	commits := s.mu.tracker.toCommit(parts)
	s.mu.Unlock()
	if err := s.commit(ctx, commits); err != nil {
		s.log.Warn("kafkapubsub: commit on revocation failed: acknowledged messages may come again",
			"group", s.group, "topic", s.topic, "partitions", parts, "err", err)
	}
	s.mu.Lock()
	for _, p := range parts {
		s.mu.tracker.drop(p)
	}
	s.mu.Unlock()
}

// onLost forgets partitions this member lost without a chance to commit.
func (s *Subscription) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range lost[s.topic] {
		s.mu.tracker.drop(p)
	}
}

// IsRetryable reports whether an error from Receive, Ack or Nack may go
// away when tried again (a broker down or moving, a rebalance in progress,
// a timeout).
func (s *Subscription) IsRetryable(err error) bool {
	if errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) {
		return true
	}
	return isRetryable(err)
}

// Ping checks that a broker answers.
func (s *Subscription) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafkapubsub: ping: %w", err)
	}
	return nil
}

// Close commits what was acknowledged, leaves the group and closes the
// client. Messages received and not acknowledged come again to the group's
// next member for their partition. A Receive in progress returns ErrClosed.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.mu.closed = true
		if s.mu.wake != nil {
			s.mu.wake()
		}
		s.mu.Unlock()
		// Wait for the Receive in progress, so that its poll has allowed
		// rebalancing before leaving the group revokes every partition.
		s.turn <- struct{}{}
		s.client.Close()
		<-s.turn
	})
	return nil
}

func (s *Subscription) closedErr(op string) error {
	return fmt.Errorf("kafkapubsub: %s on group %q, topic %q: %w", op, s.group, s.topic, ErrClosed)
}

// Compile-time guards.
var (
	_ driver.Subscription = (*Subscription)(nil)
	_ driver.Pinger       = (*Subscription)(nil)
)
