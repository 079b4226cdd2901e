package eventstore

import (
	"errors"
	"fmt"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Conditions callers test with errors.Is.
var (
	// ErrWrongVersion: an append's expected version did not hold. The error
	// is a *VersionError with the details.
	ErrWrongVersion = errors.New("eventstore: wrong expected version")
	// ErrDuplicateMismatch: some of an append's event IDs were committed
	// before, but not exactly this append. The error is an
	// *IdempotencyError.
	ErrDuplicateMismatch = errors.New("eventstore: event IDs reused in a different append")
	// ErrInvalid: the request was malformed (bad stream name, empty type,
	// over a size limit…). Nothing was written. The error is an
	// *InvalidError naming the problem.
	ErrInvalid = errors.New("eventstore: invalid request")
	// ErrStreamNotFound: the stream has never had an event.
	ErrStreamNotFound = driver.ErrStreamNotFound
	// ErrClosed: the store was closed.
	ErrClosed = driver.ErrClosed
	// ErrCorrupt: stored data failed its checksum; it was not served.
	ErrCorrupt = driver.ErrCorrupt
	// ErrUnknownOutcome: an append may or may not have committed (the
	// connection to the database was lost while it was acknowledged).
	// Retrying it with the same event IDs settles it; events whose IDs the
	// store generated cannot be retried that way, so set IDs on events that
	// must not be appended twice.
	ErrUnknownOutcome = driver.ErrUnknownOutcome
)

// VersionError is returned when an expected version does not hold.
type VersionError struct {
	Stream   StreamID
	Expected ExpectedVersion
	Actual   Version // the stream's version when the append was checked
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("eventstore: stream %q is at version %d, expected %s", e.Stream, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrWrongVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrWrongVersion }

// IdempotencyError is returned when an append reuses event IDs that were
// committed in a different append.
type IdempotencyError struct {
	Committed, Total int // how many of the append's event IDs were already committed, of how many
	Reason           string
}

func (e *IdempotencyError) Error() string {
	return fmt.Sprintf("eventstore: %d of %d event IDs were already committed in another append: %s", e.Committed, e.Total, e.Reason)
}

// Is makes errors.Is(err, ErrDuplicateMismatch) true.
func (e *IdempotencyError) Is(target error) bool { return target == ErrDuplicateMismatch }

// InvalidError names what is wrong with a request.
type InvalidError struct {
	Field  string // what was wrong, for example "stream", "events[2].type"
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("eventstore: invalid %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// mapError turns a backend's error into eventstore's.
func mapError(err error, appends []StreamAppend) error {
	var ce *driver.ConflictError
	if errors.As(err, &ce) && ce.Index >= 0 && ce.Index < len(appends) {
		a := appends[ce.Index]
		return &VersionError{Stream: a.Stream, Expected: a.Expected, Actual: Version(ce.Actual)}
	}
	var ie *driver.IdempotencyError
	if errors.As(err, &ie) {
		return &IdempotencyError{Committed: ie.Committed, Total: ie.Total, Reason: ie.Reason}
	}
	return err
}
