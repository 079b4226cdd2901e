package pubsub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/fjord-data/fjord/internal/backoff"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// The extensions a parked message carries besides its own attributes.
const (
	// ExtParkReason says why the message was parked.
	ExtParkReason = driver.ParkReasonAttribute
	// ExtParkAttempts counts the handler attempts (0 when never handled).
	ExtParkAttempts = "fjordparkattempts"
	// ExtParkTopic names the destination the message was consumed from
	// (RouterOptions.Topic).
	ExtParkTopic = "fjordparktopic"
	// ExtParkConsumer names the consumer that parked it
	// (RouterOptions.Consumer, possibly empty). It is always set: it
	// keeps a deduplicating broker from dropping the parked copy as a
	// repeat of the original (driver.ParkAttribute).
	ExtParkConsumer = driver.ParkAttribute
	// ExtParkFirstFailure and ExtParkLastFailure are the times (RFC 3339)
	// of the first and the last failed attempt.
	ExtParkFirstFailure = "fjordparkfirst"
	ExtParkLastFailure  = "fjordparklast"
)

// maxReason bounds the length of a park reason.
const maxReason = 1000

// tryPark publishes ds to the park topic and acknowledges them. When that
// fails they stay unsettled, to be tried again after the returned backoff
// (negative when Run is ending).
func (rn *runner) tryPark(ctx context.Context, ds []*delivery) (done bool, delay time.Duration) {
	err := ErrNoParkTopic
	if rn.o.Park != nil {
		msgs := make([]*driver.Message, len(ds))
		for i, d := range ds {
			msgs[i] = rn.parkCopy(d)
		}
		err = rn.o.Park.Send(ctx, msgs)
	}
	if err != nil && ctx.Err() != nil {
		return false, -1 // Run is ending: given back, not a park failure
	}
	for _, d := range ds {
		info := ParkInfo{Message: d.m, Raw: d.dm, Reason: d.park, Attempts: d.attempts, Err: err}
		if err == nil {
			rn.ack(d)
		} else {
			d.parkTries++
		}
		if hook := rn.o.Hooks.OnParked; hook != nil {
			hook(info)
		}
		level, msg := slog.LevelWarn, "pubsub: message parked"
		if err != nil {
			level, msg = slog.LevelError, "pubsub: parking failed, will try again"
		}
		rn.o.Logger.LogAttrs(ctx, level, msg, rn.logAttrs(slog.String("id", d.dm.Attributes["id"]),
			slog.String("source", d.dm.Attributes["source"]), slog.String("type", d.dm.Attributes["type"]),
			slog.String("reason", d.park), slog.Int("attempts", d.attempts), slog.Any("err", err))...)
	}
	if err == nil {
		return true, 0
	}
	return false, rn.backoff.Delay(ds[0].parkTries)
}

// parkCopy is what is published to the park topic for d: the message as
// received plus the park extensions.
func (rn *runner) parkCopy(d *delivery) *driver.Message {
	attrs := make(map[string]string, len(d.dm.Attributes)+6)
	maps.Copy(attrs, d.dm.Attributes)
	attrs[ExtParkReason] = d.park
	attrs[ExtParkAttempts] = strconv.Itoa(d.attempts)
	setIf(attrs, ExtParkTopic, rn.o.Topic)
	attrs[ExtParkConsumer] = rn.o.Consumer // even empty: see driver.DedupKey
	if !d.firstFail.IsZero() {
		attrs[ExtParkFirstFailure] = d.firstFail.UTC().Format(time.RFC3339Nano)
		attrs[ExtParkLastFailure] = d.lastFail.UTC().Format(time.RFC3339Nano)
	}
	return &driver.Message{Attributes: attrs, Key: d.dm.Key, Data: d.dm.Data}
}

// describe renders err for a park reason: one line, no control
// characters, at most maxReason bytes; a panic names the frames where it
// happened.
func describe(err error) string {
	s := err.Error()
	var pe *PanicError
	if errors.As(err, &pe) {
		s += " at " + panicFrames(pe.Stack, 4)
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "") + "…"
	}
	return s
}

// panicFrames returns up to n frames of a debug.Stack below the panic,
// innermost first, as "func (file:line)" joined by " < ".
func panicFrames(stack []byte, n int) string {
	lines := strings.Split(string(stack), "\n")
	start := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			start = i + 2
			break
		}
	}
	var frames []string
	for i := start; i+1 < len(lines) && len(frames) < n; i += 2 {
		fn := lines[i]
		if fn == "" {
			break
		}
		if j := strings.LastIndex(fn, "("); j > 0 {
			fn = fn[:j]
		}
		file := strings.TrimSpace(lines[i+1])
		if j := strings.LastIndex(file, " +0x"); j > 0 {
			file = file[:j]
		}
		if j := strings.LastIndex(file, "/"); j >= 0 {
			file = file[j+1:]
		}
		frames = append(frames, fmt.Sprintf("%s (%s)", fn, file))
	}
	return strings.Join(frames, " < ")
}

// acker sends acknowledgements in batches: once AckBatch are pending, or
// AckDelay after the first. It ends when rn.acks is closed, after a last
// flush.
func (rn *runner) acker(parent context.Context, done chan<- struct{}) {
	defer close(done)
	var pending []driver.AckID
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flush := func() {
		timer.Stop()
		if len(pending) > 0 {
			rn.settle(parent, pending, false)
			pending = pending[:0]
		}
	}
	for {
		select {
		case id, ok := <-rn.acks:
			if !ok {
				flush()
				return
			}
			pending = append(pending, id)
			if len(pending) >= rn.o.AckBatch {
				flush()
			} else if len(pending) == 1 {
				timer.Reset(rn.o.AckDelay)
			}
		case <-timer.C:
			flush()
		}
	}
}

// settle acks (or nacks) ids, retrying retryable errors a few times within
// ShutdownTimeout, which also bounds it after Run's context ended.
func (rn *runner) settle(parent context.Context, ids []driver.AckID, nack bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), rn.o.ShutdownTimeout)
	defer cancel()
	op, name := rn.r.sub.Ack, "ack"
	if nack {
		op, name = rn.r.sub.Nack, "nack"
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = op(ctx, ids); err == nil || !rn.r.sub.IsRetryable(err) {
			break
		}
		if backoff.Sleep(ctx, rn.backoff.Delay(attempt)) != nil {
			break
		}
	}
	if err == nil {
		return
	}
	if hook := rn.o.Hooks.OnAckError; hook != nil {
		hook(AckErrorInfo{Messages: len(ids), Nack: nack, Err: err})
	}
	rn.o.Logger.LogAttrs(ctx, slog.LevelError, "pubsub: "+name+" failed; the broker will deliver the messages again",
		rn.logAttrs(slog.Int("messages", len(ids)), slog.Any("err", err))...)
}

// nackUnsettled gives back every message received and not settled, in
// receive order.
func (rn *runner) nackUnsettled(parent context.Context) {
	rn.mu.Lock()
	ds := slices.SortedFunc(maps.Keys(rn.mu.unsettled), func(a, b *delivery) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]driver.AckID, len(ds))
	for i, d := range ds {
		ids[i] = d.dm.AckID
	}
	clear(rn.mu.unsettled)
	clear(rn.mu.keys)
	rn.mu.Unlock()
	if len(ids) > 0 {
		rn.settle(parent, ids, true)
	}
}
