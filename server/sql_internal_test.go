package server

import (
	"fmt"
	"testing"

	"connectrpc.com/connect"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql"
)

func TestSQLStatusError(t *testing.T) {
	tests := []struct {
		err  error
		want connect.Code
	}{
		{&streamsql.Error{Msg: "bad"}, connect.CodeInvalidArgument},
		{&streamsql.Error{Msg: "unknown stream or table x"}, connect.CodeNotFound},
		{fmt.Errorf("x: %w", streamsql.ErrNotFound), connect.CodeNotFound},
		{streamsql.ErrExists, connect.CodeAlreadyExists},
		{streamsql.ErrInUse, connect.CodeFailedPrecondition},
		{streamsql.ErrSlowSubscriber, connect.CodeResourceExhausted},
		{streamsql.ErrClosed, connect.CodeUnavailable},
		{errShuttingDown, connect.CodeUnavailable},
		{eventstore.ErrClosed, connect.CodeUnavailable},
		{fmt.Errorf("disk on fire"), connect.CodeInternal},
	}
	for _, tc := range tests {
		if got := sqlStatusError(tc.err).Code(); got != tc.want {
			t.Errorf("sqlStatusError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
