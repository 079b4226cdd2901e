package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/anypb"

	esv1 "github.com/fjord-data/fjord/api/fjord/eventstore/v1"
)

// AppendBatch runs the request's appends concurrently, so that they join
// the store's group commit, each with its own outcome: an item fails alone
// (bad input, wrong expected version, no write permission on one of its
// streams), and the call fails only when the request as a whole is
// refused (no token, too large, over MaxBatchAppends items). OnAppend runs
// once per item, as for Append.
func (s *service) AppendBatch(ctx context.Context, req *connect.Request[esv1.AppendBatchRequest]) (*connect.Response[esv1.AppendBatchResponse], error) {
	items := req.Msg.GetAppends()
	if len(items) > s.opts.MaxBatchAppends {
		err := fmt.Errorf("the batch has %d appends, over the limit of %d", len(items), s.opts.MaxBatchAppends)
		return nil, withDetail(connect.CodeInvalidArgument, err, &esv1.InvalidField{Field: "appends", Reason: err.Error()})
	}
	out := &esv1.AppendBatchResponse{Outcomes: make([]*esv1.AppendOutcome, len(items))}
	if len(items) == 1 {
		out.Outcomes[0] = s.appendItem(ctx, items[0])
		return connect.NewResponse(out), nil
	}
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Go(func() { out.Outcomes[i] = s.appendItem(ctx, item) })
	}
	wg.Wait()
	return connect.NewResponse(out), nil
}

// appendItem runs one append of a batch and reports its outcome.
func (s *service) appendItem(ctx context.Context, req *esv1.AppendRequest) *esv1.AppendOutcome {
	start := time.Now()
	res, err := s.append(ctx, req)
	s.opts.Hooks.appended(req, start, err)
	if err != nil {
		(&errorLogger{log: s.opts.Logger}).logged(ctx, "AppendBatch item", err)
		return &esv1.AppendOutcome{Outcome: &esv1.AppendOutcome_Error{Error: errorToProto(statusError(err, nil))}}
	}
	return &esv1.AppendOutcome{Outcome: &esv1.AppendOutcome_Ok{Ok: res}}
}

// errorToProto carries a Connect error, with its details, in a response.
func errorToProto(ce *connect.Error) *esv1.AppendError {
	out := &esv1.AppendError{Code: uint32(ce.Code()), Message: ce.Message()}
	for _, d := range ce.Details() {
		out.Details = append(out.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	return out
}
