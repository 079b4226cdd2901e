//go:build race

package outbox_test

// raceEnabled: the race detector slows the chaos test's processes down.
const raceEnabled = true
