package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
	"github.com/fjord-data/fjord/eventstore"
)

// errShuttingDown ends long-lived streams when the server drains.
var errShuttingDown = errors.New("fjord: the server is shutting down; reconnect")

// statusError turns an eventstore error into a Connect error with a status
// code and a detail message. It is the only place where errors become
// status codes. appends are the request's, when it was an Append, so that
// a wrong expected version can name the index and the expectation.
func statusError(err error, appends []*esv1.StreamAppend) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var (
		invalid *eventstore.InvalidError
		version *eventstore.VersionError
		idem    *eventstore.IdempotencyError
	)
	switch {
	case errors.As(err, &invalid):
		return withDetail(connect.CodeInvalidArgument, err, &esv1.InvalidField{Field: invalid.Field, Reason: invalid.Reason})
	case errors.As(err, &version):
		d := &esv1.WrongExpectedVersion{Stream: string(version.Stream), Actual: uint64(version.Actual)}
		for i, a := range appends {
			if a.GetStream() == string(version.Stream) {
				d.Index, d.Expected = uint32(i), a.GetExpected()
				break
			}
		}
		if d.Expected == nil {
			d.Expected = &esv1.ExpectedVersion{Kind: &esv1.ExpectedVersion_Any{}}
		}
		return withDetail(connect.CodeFailedPrecondition, err, d)
	case errors.As(err, &idem):
		return withDetail(connect.CodeAlreadyExists, err,
			&esv1.IdempotencyMismatch{Committed: uint32(idem.Committed), Total: uint32(idem.Total), Reason: idem.Reason})
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, eventstore.ErrClosed):
		return withDetail(connect.CodeUnavailable, err, &esv1.StoreClosed{})
	case errors.Is(err, errShuttingDown):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, eventstore.ErrCorrupt):
		return connect.NewError(connect.CodeDataLoss, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}

func withDetail(code connect.Code, err error, detail proto.Message) *connect.Error {
	ce := connect.NewError(code, err)
	if d, derr := connect.NewErrorDetail(detail); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}
