package filestore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// A frame is one event on disk:
//
//	[u32 length][u32 CRC-32C of payload][payload]
//
// and the payload is
//
//	flags byte
//	position uvarint, time varint (Unix nanoseconds), version uvarint, id [16]byte,
//	stream, type, content type, correlation ID, causation ID, metadata, data
//	(each a uvarint length then the bytes).
//
// The strings are contiguous, and so are metadata and data, so that decoding
// a record costs two allocations. Numbers in the header are big-endian.
const (
	frameHeader = 8

	flagCommitEnd    = 1 << 0 // last frame of a commit
	maxFramePayload  = 1 << 30
	maxVarintLen     = binary.MaxVarintLen64
	frameFixedBound  = frameHeader + 1 + 3*maxVarintLen + 16 + 7*maxVarintLen
	errFrameTooShort = frameError("payload too short")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type frameError string

func (e frameError) Error() string { return string(e) }

// frameBound is an upper bound of the encoded size of e's frame in stream.
func frameBound(stream string, e *driver.Event) int {
	return frameFixedBound + len(stream) + len(e.Type) + len(e.ContentType) + len(e.CorrelationID) +
		len(e.CausationID) + len(e.Metadata) + len(e.Data)
}

// appendFrame encodes one frame at the end of buf.
func appendFrame(buf []byte, flags byte, pos uint64, t int64, stream string, version uint64, e *driver.Event) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0)
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, pos)
	buf = binary.AppendVarint(buf, t)
	buf = binary.AppendUvarint(buf, version)
	buf = append(buf, e.ID[:]...)
	buf = appendString(buf, stream)
	buf = appendString(buf, e.Type)
	buf = appendString(buf, e.ContentType)
	buf = appendString(buf, e.CorrelationID)
	buf = appendString(buf, e.CausationID)
	buf = binary.AppendUvarint(buf, uint64(len(e.Metadata)))
	buf = append(buf, e.Metadata...)
	buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
	buf = append(buf, e.Data...)
	payload := buf[start+frameHeader:]
	binary.BigEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// frameHead is the part of a payload read without allocating.
type frameHead struct {
	flags    byte
	position uint64
	time     int64
	version  uint64
	id       [16]byte
	stream   []byte // aliases the payload
	typ      []byte // aliases the payload
	strStart int    // offset of the stream's length prefix
	rest     int    // offset after the type
}

// checkFrame validates the frame at the start of b: it returns the payload
// length, or 0 for end of data, or an error when b does not hold a valid
// frame. errShort means b is too short for the frame its header announces.
func checkFrame(b []byte) (payload []byte, err error) {
	if len(b) < frameHeader {
		return nil, errShort
	}
	n := binary.BigEndian.Uint32(b)
	if n == 0 {
		return nil, nil
	}
	if n > maxFramePayload {
		return nil, frameError("frame length out of range")
	}
	if len(b) < frameHeader+int(n) {
		return nil, errShort
	}
	p := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(p, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return nil, frameError("checksum mismatch")
	}
	return p, nil
}

var errShort = errors.New("short frame")

// parseHead decodes the fixed part of a checked payload.
func parseHead(p []byte) (h frameHead, err error) {
	if len(p) < 1 {
		return h, errFrameTooShort
	}
	h.flags = p[0]
	i := 1
	var n int
	if h.position, n = binary.Uvarint(p[i:]); n <= 0 {
		return h, frameError("bad position")
	}
	i += n
	if h.time, n = binary.Varint(p[i:]); n <= 0 {
		return h, frameError("bad time")
	}
	i += n
	if h.version, n = binary.Uvarint(p[i:]); n <= 0 {
		return h, frameError("bad version")
	}
	i += n
	if len(p) < i+16 {
		return h, errFrameTooShort
	}
	copy(h.id[:], p[i:])
	i += 16
	h.strStart = i
	if h.stream, i, err = field(p, i); err != nil {
		return h, err
	}
	if h.typ, i, err = field(p, i); err != nil {
		return h, err
	}
	h.rest = i
	return h, nil
}

func field(p []byte, i int) ([]byte, int, error) {
	l, n := binary.Uvarint(p[i:])
	if n <= 0 || uint64(len(p)-i-n) < l {
		return nil, 0, errFrameTooShort
	}
	i += n
	return p[i : i+int(l) : i+int(l)], i + int(l), nil
}

// decodeRecord decodes a checked payload whose head is h into a record that
// owns its memory: one string holds every string field, one slice holds
// metadata and data.
func decodeRecord(p []byte, h *frameHead) (driver.Record, error) {
	i := h.rest
	var err error
	for range 3 { // content type, correlation, causation
		if _, i, err = field(p, i); err != nil {
			return driver.Record{}, err
		}
	}
	strEnd := i
	md, i, err := field(p, i)
	if err != nil {
		return driver.Record{}, err
	}
	data, i, err := field(p, i)
	if err != nil {
		return driver.Record{}, err
	}
	if i != len(p) {
		return driver.Record{}, frameError("trailing bytes in payload")
	}
	all := string(p[h.strStart:strEnd])
	j := 0
	next := func() string {
		l, n := uvarintString(all[j:]) // validated above
		j += n + int(l)
		return all[j-int(l) : j]
	}
	r := driver.Record{Version: h.version, Position: h.position, Time: time.Unix(0, h.time).UTC()}
	r.ID = h.id
	r.Stream, r.Type, r.ContentType, r.CorrelationID, r.CausationID = next(), next(), next(), next(), next()
	var buf []byte
	if len(md)+len(data) > 0 {
		buf = make([]byte, len(md)+len(data))
		copy(buf, md)
		copy(buf[len(md):], data)
	}
	// Empty payloads read back as nil, as in memstore.
	if len(md) > 0 {
		r.Metadata = buf[:len(md):len(md)]
	}
	if len(data) > 0 {
		r.Data = buf[len(md):]
	}
	return r, nil
}

func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < maxVarintLen; i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
