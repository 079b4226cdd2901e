package bench

import "testing"

// TestSQLScaleScenarios runs push-fanout and the persistent scenarios at
// toy sizes and checks what they count (not how fast they are).
func TestSQLScaleScenarios(t *testing.T) {
	t.Run("push-fanout", func(t *testing.T) {
		// amount = i%1000 passes at >= 900: 300 of 3,000 events (the last,
		// the marker, passes either way).
		r, err := SQL(t.Context(), "push-fanout", SQLConfig{Events: 3000, Subscribers: 5, PassPercent: 10})
		if err != nil {
			t.Fatal(err)
		}
		if r.Subscribers != 5 || r.DeliveredPerSubscriber != 300 || r.Events != 3000 {
			t.Errorf("got %d subscribers with %d changes each over %d events; want 5, 300, 3000", r.Subscribers, r.DeliveredPerSubscriber, r.Events)
		}
		if r.EventsPerSec <= 0 || r.BaselineEventsPerSec <= 0 || r.Ratio <= 0 {
			t.Errorf("rates missing: %+v", r.SQLExtra)
		}
	})
	t.Run("persistent-memory", func(t *testing.T) {
		r, err := SQL(t.Context(), "persistent-memory", SQLConfig{Events: 500, Keys: 2000, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Keys != 2000 || r.SmallKeys != 100 || r.Events != 2000 {
			t.Errorf("got %d keys (small %d) over %d events; want 2000 (100), 2000", r.Keys, r.SmallKeys, r.Events)
		}
		if r.StateDiskMB <= 0 {
			t.Errorf("no Pebble directory size: %+v", r.SQLExtra)
		}
	})
	t.Run("persistent-throughput", func(t *testing.T) {
		r, err := SQL(t.Context(), "persistent-throughput", SQLConfig{Events: 3000, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if r.Events != 3000 || r.EventsPerSec <= 0 || r.BaselineEventsPerSec <= 0 || r.Ratio <= 0 {
			t.Errorf("got %d events, rates %.0f and %.0f", r.Events, r.EventsPerSec, r.BaselineEventsPerSec)
		}
	})
}

func TestSQLConfigErrors(t *testing.T) {
	for _, cfg := range []SQLConfig{{Events: -1}, {Subscribers: -1}, {PassPercent: 0.05}, {PassPercent: 101}, {Keys: -2}} {
		if _, err := SQL(t.Context(), "push-fanout", cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
