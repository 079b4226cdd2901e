package kafkapubsub

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A Kafka group commits one offset per partition: "everything before this
// offset is done". Messages acknowledged out of order above that offset
// would come back after a restart, so a commit also carries, in the offset
// commit's metadata string, the spans of offsets acknowledged above it. A
// member that takes the partition over reads them back
// (kgo.OnOffsetsFetched) and skips those offsets.
//
// The metadata is "fjord1;" followed by comma-separated spans "gap:len",
// each relative to the end of the previous span (the first to the committed
// offset): "fjord1;1:2,3:1" with committed offset 10 means offsets 11, 12
// and 16 are acknowledged. Brokers bound the metadata
// (offset.metadata.max.bytes, 4096 by default), so at most maxAckMetaBytes
// are written: spans that do not fit are left out, and those messages are
// delivered again after a restart (at least once, never lost).

// ackMetaPrefix starts every metadata string Fjord writes.
const ackMetaPrefix = "fjord1;"

// maxAckMetaBytes bounds the metadata written with a commit.
const maxAckMetaBytes = 3000

// span is a half-open range of offsets [lo, hi).
type span struct{ lo, hi int64 }

// errAckMeta is matched by every malformed ack metadata string.
var errAckMeta = errors.New("kafkapubsub: malformed acknowledgement metadata")

// encodeAckMeta writes spans (increasing, disjoint, all at or above
// committed) relative to committed, dropping the spans beyond
// maxAckMetaBytes. It returns "" when there are no spans.
func encodeAckMeta(committed int64, spans []span) string {
	if len(spans) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(ackMetaPrefix)
	prev := committed
	for i, s := range spans {
		item := strconv.FormatInt(s.lo-prev, 10) + ":" + strconv.FormatInt(s.hi-s.lo, 10)
		if b.Len()+len(item)+1 > maxAckMetaBytes {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
		prev = s.hi
	}
	if b.Len() == len(ackMetaPrefix) {
		return ""
	}
	return b.String()
}

// decodeAckMeta reads what encodeAckMeta wrote for committed. Metadata that
// Fjord did not write (another client's, or empty) decodes to no spans;
// metadata with Fjord's prefix that does not parse is an error matching
// errAckMeta.
func decodeAckMeta(committed int64, meta string) ([]span, error) {
	body, ok := strings.CutPrefix(meta, ackMetaPrefix)
	if !ok {
		return nil, nil
	}
	if len(meta) > maxAckMetaBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errAckMeta, len(meta), maxAckMetaBytes)
	}
	var spans []span
	prev := committed
	for item := range strings.SplitSeq(body, ",") {
		g, l, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%w: span %q is not gap:length", errAckMeta, item)
		}
		gap, ok1 := parseDecimal(g)
		n, ok2 := parseDecimal(l)
		switch {
		case !ok1 || !ok2:
			return nil, fmt.Errorf("%w: span %q is not two decimal numbers", errAckMeta, item)
		case gap < 0 || n <= 0 || (len(spans) > 0 && gap == 0):
			return nil, fmt.Errorf("%w: span %q overlaps, touches or is empty", errAckMeta, item)
		case prev > (1<<62)-gap || prev+gap > (1<<62)-n:
			return nil, fmt.Errorf("%w: span %q is beyond any offset", errAckMeta, item)
		}
		s := span{prev + gap, prev + gap + n}
		spans = append(spans, s)
		prev = s.hi
	}
	return spans, nil
}

// parseDecimal parses a non-negative decimal number in the one form
// strconv.FormatInt writes it (no sign, no leading zero).
func parseDecimal(s string) (int64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
