package driver

import "fmt"

// MatchDuplicate decides what a batch means given the records committed
// earlier under its event IDs. lookup returns the committed record with an
// ID, if any. Backends call it inside their commit path, before checking
// expected versions, so that a retried append returns its original result
// however long ago it committed.
//
// It returns dup=false when none of the IDs were committed, the original
// result with dup=true when all were and they form the same appends (same
// streams, consecutive versions in the same order), and an
// *IdempotencyError otherwise. Events with GeneratedID set are not looked
// up: they count as not committed.
func MatchDuplicate(b *Batch, lookup func(id [16]byte) (Record, bool, error)) (c Committed, dup bool, err error) {
	total, found := 0, 0
	var mismatch string
	streams := make([]StreamCommitted, len(b.Appends))
	for i := range b.Appends {
		a := &b.Appends[i]
		var first uint64
		for j := range a.Events {
			total++
			if a.Events[j].GeneratedID {
				continue // new, so not committed before
			}
			r, ok, err := lookup(a.Events[j].ID)
			if err != nil {
				return Committed{}, false, err
			}
			if !ok {
				continue
			}
			found++
			if j == 0 {
				first = r.Version
			}
			switch {
			case mismatch != "":
			case r.Stream != a.Stream:
				mismatch = fmt.Sprintf("event %x was committed to stream %q, not %q", a.Events[j].ID, r.Stream, a.Stream)
			case j > 0 && r.Version != first+uint64(j):
				mismatch = fmt.Sprintf("event %x was committed in another order or batch", a.Events[j].ID)
			}
			streams[i] = StreamCommitted{Version: r.Version, Position: r.Position}
		}
	}
	switch {
	case found == 0:
		return Committed{}, false, nil
	case found < total:
		return Committed{}, false, &IdempotencyError{Committed: found, Total: total,
			Reason: "a retry must repeat exactly the events of the original append"}
	case mismatch != "":
		return Committed{}, false, &IdempotencyError{Committed: found, Total: total, Reason: mismatch}
	}
	return Committed{Streams: streams, Duplicate: true}, true, nil
}
