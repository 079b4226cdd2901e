// Package drivertest is the conformance suite every event store backend
// runs. It drives a backend through eventstore.Store (and, where the seam
// itself is specified, through the raw driver) and checks expected
// versions, multi-stream atomicity, idempotency, reads and filters, stream
// info, input validation, the gapless commit order under concurrent writers,
// and catch-up→live subscriptions.
//
// An adapter runs it from its own test in a few lines:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) driver.Backend { return memstore.New() })
//	}
//
// open must return a fresh, empty backend and register its own cleanup with
// t.Cleanup. Some subtests close the backend (through Store.Close) before
// that cleanup runs, so the cleanup must tolerate a second Close.
//
// Each subtest checks that it leaves no goroutine behind (go.uber.org/goleak)
// after open's cleanup has run, so TestConformance must not run in parallel
// with other tests of its package (or set Options.NoLeakCheck). The suite
// never sleeps: it waits on deliveries and channels, with a timeout
// (Options.Timeout) only as a failure guard.
package drivertest

import (
	"testing"
	"time"

	"github.com/fjord-data/fjord/eventstore/driver"
)

// Options tune the suite. The zero value works.
type Options struct {
	// Writers is how many goroutines append concurrently in the
	// concurrency and subscription tests (default 8).
	Writers int
	// Events is how many events each load test appends in total
	// (default 2000, or 400 with -short). Lower it for slow backends.
	Events int
	// Timeout bounds each subtest that waits on other goroutines; it is a
	// failure guard, never a wait (default 60s).
	Timeout time.Duration
	// NoLeakCheck turns off the per-subtest goroutine leak check.
	NoLeakCheck bool
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Writers <= 0 {
		out.Writers = 8
	}
	if out.Events <= 0 {
		out.Events = 2000
		if testing.Short() {
			out.Events = 400
		}
	}
	if out.Timeout <= 0 {
		out.Timeout = 60 * time.Second
	}
	return out
}

// Run runs the whole suite with default options. open returns a fresh,
// empty backend for each subtest and registers its own cleanup.
func Run(t *testing.T, open func(t *testing.T) driver.Backend) {
	RunWith(t, open, nil)
}

// RunWith runs the whole suite with opts (nil: defaults).
func RunWith(t *testing.T, open func(t *testing.T) driver.Backend, opts *Options) {
	s := &suite{open: open, opts: opts.withDefaults()}
	for _, g := range s.groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, tc.fn)
			}
		})
	}
}

type namedTest struct {
	name string
	fn   func(t *testing.T)
}

type group struct {
	name  string
	tests []namedTest
}

// groups lists every test of the suite, grouped by concern.
func (s *suite) groups() []group {
	return []group{
		{"Append", []namedTest{
			{"ExpectedVersion", s.testExpectedVersion},
			{"RoundTrip", s.testRoundTrip},
			{"TimeNonDecreasing", s.testTimeNonDecreasing},
		}},
		{"MultiStream", []namedTest{
			{"Atomic", s.testMultiAtomic},
			{"Consecutive", s.testMultiConsecutive},
		}},
		{"Idempotency", []namedTest{
			{"Retry", s.testIdempotentRetry},
			{"RetryMulti", s.testIdempotentRetryMulti},
			{"Mismatch", s.testIdempotencyMismatch},
			{"GeneratedIDs", s.testGeneratedIDs},
		}},
		{"Read", []namedTest{
			{"Stream", s.testReadStream},
			{"All", s.testReadAll},
			{"AllUntil", s.testReadAllUntil},
			{"Filter", s.testReadFilter},
		}},
		{"StreamInfo", []namedTest{
			{"NotFound", s.testStreamInfoNotFound},
			{"Found", s.testStreamInfo},
		}},
		{"Invalid", []namedTest{
			{"Rejected", s.testInvalid},
			{"AtLimits", s.testAtLimits},
		}},
		{"Concurrency", []namedTest{
			{"RacingWritersRounds", s.testRacingWritersRounds},
			{"RacingWriters", s.testRacingWriters},
			{"GaplessUnderLoad", s.testGaplessUnderLoad},
		}},
		{"Subscribe", []namedTest{
			{"CatchUpToLive", s.testCatchUpToLive},
			{"StreamCatchUpToLive", s.testStreamCatchUpToLive},
			{"FilterCheckpoints", s.testFilterCheckpoints},
			{"CheckpointResume", s.testCheckpointResume},
			{"Cancel", s.testSubscribeCancel},
			{"Close", s.testSubscribeClose},
			{"SlowConsumer", s.testSlowConsumer},
		}},
		{"Close", []namedTest{
			{"CallsAfterClose", s.testCallsAfterClose},
		}},
	}
}
