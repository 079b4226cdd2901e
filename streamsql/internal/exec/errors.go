package exec

import (
	"sync"
	"sync/atomic"
)

// ErrorLog counts the problems a query met without stopping: event data
// that did not decode into the declared columns, and runtime errors in
// expressions (division by zero, bad casts, function errors), each of
// which made a value NULL. It keeps the most recent messages. It is safe
// for concurrent use.
type ErrorLog struct {
	decode, runtime, late atomic.Int64
	mu                    struct {
		sync.Mutex
		recent []string
	}
}

// maxRecent is how many messages an ErrorLog keeps.
const maxRecent = 20

// Counts returns the number of decode errors, runtime errors and late
// events (dropped because their window had closed) so far.
func (l *ErrorLog) Counts() (decode, runtime, late int64) {
	return l.decode.Load(), l.runtime.Load(), l.late.Load()
}

// Recent returns the latest messages, oldest first.
func (l *ErrorLog) Recent() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.mu.recent...)
}

// AddRuntime counts a runtime error met outside expressions (an output
// row the event store cannot take) and remembers msg.
func (l *ErrorLog) AddRuntime(msg string) { l.addRuntime(msg) }

func (l *ErrorLog) addDecode(msg string)  { l.decode.Add(1); l.remember(msg) }
func (l *ErrorLog) addRuntime(msg string) { l.runtime.Add(1); l.remember(msg) }
func (l *ErrorLog) addLate(msg string)    { l.late.Add(1); l.remember(msg) }

func (l *ErrorLog) remember(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.mu.recent) == maxRecent {
		copy(l.mu.recent, l.mu.recent[1:])
		l.mu.recent = l.mu.recent[:maxRecent-1]
	}
	l.mu.recent = append(l.mu.recent, msg)
}
