package filestore_test

import (
	"testing"

	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/drivertest"
	"github.com/fjord-data/fjord/eventstore/filestore"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Backend {
		s, err := filestore.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
