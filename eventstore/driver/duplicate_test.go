package driver_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-data/fjord/eventstore/driver"
)

func TestMatchDuplicate(t *testing.T) {
	committed := map[[16]byte]driver.Record{
		{1}: {Stream: "a", Version: 1, Position: 10},
		{2}: {Stream: "a", Version: 2, Position: 11},
		{3}: {Stream: "b", Version: 7, Position: 12},
	}
	var lookups int
	lookup := func(id [16]byte) (driver.Record, bool, error) {
		lookups++
		r, ok := committed[id]
		return r, ok, nil
	}
	ev := func(id byte, generated bool) driver.Event {
		return driver.Event{ID: [16]byte{id}, GeneratedID: generated}
	}
	tests := []struct {
		name    string
		appends []driver.StreamAppend
		want    driver.Committed
		dup     bool
		wantErr bool
		lookups int
	}{
		{name: "new", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(9, false)}}}, lookups: 1},
		{name: "generated IDs are not looked up", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(1, true), ev(2, true)}}}},
		{name: "retry", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(1, false), ev(2, false)}}, {Stream: "b", Events: []driver.Event{ev(3, false)}}},
			want: driver.Committed{Streams: []driver.StreamCommitted{{Version: 2, Position: 11}, {Version: 7, Position: 12}}, Duplicate: true}, dup: true, lookups: 3},
		{name: "partial overlap", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(1, false), ev(9, false)}}}, wantErr: true, lookups: 2},
		{name: "retry with a new generated event", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(1, false), ev(9, true)}}}, wantErr: true, lookups: 1},
		{name: "other stream", appends: []driver.StreamAppend{{Stream: "b", Events: []driver.Event{ev(1, false)}}}, wantErr: true, lookups: 1},
		{name: "other order", appends: []driver.StreamAppend{{Stream: "a", Events: []driver.Event{ev(2, false), ev(1, false)}}}, wantErr: true, lookups: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookups = 0
			got, dup, err := driver.MatchDuplicate(&driver.Batch{Appends: tt.appends}, lookup)
			var ie *driver.IdempotencyError
			if tt.wantErr != errors.As(err, &ie) {
				t.Fatalf("error %v, want an *IdempotencyError: %v", err, tt.wantErr)
			}
			if dup != tt.dup || lookups != tt.lookups {
				t.Errorf("dup %v after %d lookups, want %v after %d", dup, lookups, tt.dup, tt.lookups)
			}
			if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}
