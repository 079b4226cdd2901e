package kafkapubsub

// tracker follows the offsets a subscription has handed out, per partition
// of its one topic, and says what may be committed. It is not safe for
// concurrent use: Subscription guards it with its mutex.
//
// Per partition, every offset below hw has been handed out (or skipped as
// already acknowledged, or never existed: Kafka offsets have holes after
// compaction and transactions) and is in one of three states: in flight
// (handed out, not yet acknowledged), pending (nacked, to be handed out
// again) or done. The commit point is the lowest offset in flight or
// pending, else hw: the group's committed offset never passes an
// unacknowledged message. Done offsets above the commit point travel in the
// commit metadata (see ackmeta.go).
type tracker struct {
	parts map[int32]*partition
}

type deliveryState uint8

const (
	inFlight deliveryState = iota + 1
	pending
)

// partition is the tracker's state for one partition.
type partition struct {
	// hw is one past the highest offset seen.
	hw int64
	// order holds offsets in flight or pending in increasing order, and
	// done ones not yet trimmed; state says which are still open.
	order []int64
	state map[int64]deliveryState
	// doneAbove are spans at or above hw acknowledged in an earlier
	// session (read from the commit metadata): skipped when they come.
	doneAbove []span
	// seek is set by nack and cleared by seeks.
	seek bool
	// committed and committedMeta are what was last committed.
	committed     int64
	committedMeta string
}

func newTracker() *tracker { return &tracker{parts: make(map[int32]*partition)} }

// seed starts tracking a partition whose group offset is committed, with the
// spans read from the commit metadata. A partition already tracked keeps its
// state (it stayed assigned across a rebalance).
func (t *tracker) seed(p int32, committed int64, done []span, meta string) {
	if _, ok := t.parts[p]; ok {
		return
	}
	t.parts[p] = &partition{hw: committed, state: make(map[int64]deliveryState), doneAbove: done,
		committed: committed, committedMeta: meta}
}

// deliver reports whether the record at offset o of partition p is to be
// handed out: a new offset, or one pending after a nack. An offset in
// flight, done, or acknowledged in an earlier session is skipped (a seek
// back after a nack fetches them again).
func (t *tracker) deliver(p int32, o int64) bool {
	ps, ok := t.parts[p]
	if !ok {
		ps = &partition{hw: o, state: make(map[int64]deliveryState), committed: -1}
		t.parts[p] = ps
	}
	if o < ps.hw {
		if ps.state[o] == pending {
			ps.state[o] = inFlight
			return true
		}
		return false
	}
	ps.hw = o + 1
	for len(ps.doneAbove) > 0 && ps.doneAbove[0].hi <= o {
		ps.doneAbove = ps.doneAbove[1:]
	}
	if len(ps.doneAbove) > 0 && ps.doneAbove[0].lo <= o {
		return false
	}
	ps.order = append(ps.order, o)
	ps.state[o] = inFlight
	return true
}

// ack marks offset o of partition p done. It reports false when p is not
// tracked (revoked since the message was handed out).
func (t *tracker) ack(p int32, o int64) bool {
	ps, ok := t.parts[p]
	if !ok {
		return false
	}
	delete(ps.state, o)
	if len(ps.order) > 64 && len(ps.order) > 4*len(ps.state) {
		ps.compact()
	}
	return true
}

// nack marks offset o of partition p, if in flight, pending: it is handed
// out again after the partition seeks back. It reports false when p is not
// tracked.
func (t *tracker) nack(p int32, o int64) bool {
	ps, ok := t.parts[p]
	if !ok {
		return false
	}
	if ps.state[o] == inFlight {
		ps.state[o] = pending
		ps.seek = true
	}
	return true
}

// seeks returns, for each partition with a nack since the last call, the
// lowest pending offset to fetch from again. Every offset between it and hw
// is pending (fetched and handed out again), in flight or done (fetched and
// skipped), so seeking there loses nothing and repeats nothing.
func (t *tracker) seeks() map[int32]int64 {
	var out map[int32]int64
	for p, ps := range t.parts {
		if !ps.seek {
			continue
		}
		ps.seek = false
		for _, o := range ps.order {
			if ps.state[o] == pending {
				if out == nil {
					out = make(map[int32]int64)
				}
				out[p] = o
				break
			}
		}
	}
	return out
}

// seekPending reports whether a nack waits for seeks.
func (t *tracker) seekPending() bool {
	for _, ps := range t.parts {
		if ps.seek {
			return true
		}
	}
	return false
}

// commitPoint is the offset to commit for ps: the lowest open offset, else hw.
func (ps *partition) commitPoint() int64 {
	for len(ps.order) > 0 && ps.state[ps.order[0]] == 0 {
		ps.order = ps.order[1:]
	}
	if len(ps.order) > 0 {
		return ps.order[0]
	}
	return ps.hw
}

// compact drops done offsets from order.
func (ps *partition) compact() {
	kept := ps.order[:0]
	for _, o := range ps.order {
		if ps.state[o] != 0 {
			kept = append(kept, o)
		}
	}
	ps.order = kept
}

// doneSpans returns the done offsets above the commit point cp as spans:
// the gaps between open offsets below hw, then the earlier session's spans
// at or above hw.
func (ps *partition) doneSpans(cp int64) []span {
	var spans []span
	add := func(s span) {
		if s.lo >= s.hi {
			return
		}
		if n := len(spans); n > 0 && spans[n-1].hi >= s.lo {
			spans[n-1].hi = max(spans[n-1].hi, s.hi)
			return
		}
		spans = append(spans, s)
	}
	prev := cp
	for _, o := range ps.order {
		if ps.state[o] == 0 || o < cp {
			continue
		}
		add(span{prev + 1, o})
		prev = o
	}
	if len(ps.order) > 0 {
		add(span{prev + 1, ps.hw})
	}
	for _, s := range ps.doneAbove {
		add(span{max(s.lo, ps.hw), s.hi})
	}
	return spans
}

// commit is one partition's offset and metadata to commit.
type commit struct {
	offset int64
	meta   string
}

// toCommit returns, for the partitions in only (all when only is nil), the
// offset and metadata to commit where they differ from what was last
// committed.
func (t *tracker) toCommit(only []int32) map[int32]commit {
	out := make(map[int32]commit)
	consider := func(p int32, ps *partition) {
		cp := ps.commitPoint()
		c := commit{cp, encodeAckMeta(cp, ps.doneSpans(cp))}
		if c.offset != ps.committed || c.meta != ps.committedMeta {
			out[p] = c
		}
	}
	if only == nil {
		for p, ps := range t.parts {
			consider(p, ps)
		}
		return out
	}
	for _, p := range only {
		if ps, ok := t.parts[p]; ok {
			consider(p, ps)
		}
	}
	return out
}

// committed records that c was committed for p.
func (t *tracker) committed(p int32, c commit) {
	if ps, ok := t.parts[p]; ok {
		ps.committed, ps.committedMeta = c.offset, c.meta
	}
}

// drop forgets partition p (revoked or lost): its messages in flight are
// delivered again to whichever member takes it, from the committed offset.
func (t *tracker) drop(p int32) { delete(t.parts, p) }
