package memstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/drivertest"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Backend {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Compile-time guards.
var (
	_ driver.Backend = (*memstore.Store)(nil)
	_ driver.Watcher = (*memstore.Store)(nil)
)
