package driver_test

import (
	"testing"

	"github.com/fjord-data/fjord/pubsub/driver"
)

// TestDedupKey: a message sent again has the same key; its requeued
// copies and its parked copies (after each requeue) have keys of their
// own, so that a deduplicating broker keeps them.
func TestDedupKey(t *testing.T) {
	msg := func(kv ...string) *driver.Message {
		a := map[string]string{"source": "/shop/orders", "id": "42", "type": "t"}
		for i := 0; i < len(kv); i += 2 {
			a[kv[i]] = kv[i+1]
		}
		return &driver.Message{Attributes: a}
	}
	park := driver.ParkAttribute
	tests := []struct {
		name string
		m    *driver.Message
	}{
		{"original", msg()},
		{"requeued once", msg(driver.RequeueAttribute, "1")},
		{"requeued twice", msg(driver.RequeueAttribute, "2")},
		{"parked by billing", msg(park, "billing")},
		{"parked by shipping", msg(park, "shipping")},
		{"parked by an unnamed consumer", msg(park, "")},
		{"parked after a requeue", msg(driver.RequeueAttribute, "1", park, "billing")},
		{"other id", &driver.Message{Attributes: map[string]string{"source": "/shop/orders", "id": "43"}}},
		{"other source", &driver.Message{Attributes: map[string]string{"source": "/shop/order", "id": "s42"}}},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		k := driver.DedupKey(tt.m)
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s have the same key %q", tt.name, other, k)
		}
		seen[k] = tt.name
	}
	same := []struct{ a, b *driver.Message }{
		{msg(), msg("type", "other", "subject", "x")},
		{msg(park, "billing", driver.ParkReasonAttribute, "one reason"), msg(park, "billing", driver.ParkReasonAttribute, "another reason", "fjordparkattempts", "3")},
	}
	for _, s := range same {
		if a, b := driver.DedupKey(s.a), driver.DedupKey(s.b); a != b {
			t.Errorf("keys %q and %q differ for one message sent twice", a, b)
		}
	}
}
