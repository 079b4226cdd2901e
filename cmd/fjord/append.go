package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
)

type appendFlags struct {
	expected, id, contentType, metadata, correlation, causation string
}

func newAppendCmd(a *app) *cobra.Command {
	var f appendFlags
	cmd := &cobra.Command{
		Use:   "append STREAM TYPE [DATA]",
		Short: "Append one event to a stream",
		Long: `Append one event to a stream and print the stream's new version and the
event's global position. DATA is the payload; without it (or with "-") the
payload is read from standard input. JSON payloads (the default content
type) are checked before anything is written.

--expected makes the append conditional: "any" (no check), "no-stream" (the
stream must have no events), "exists", or a version number N (the stream
must be at exactly N). When the condition fails nothing is written and the
error shows the expected and the actual version.

--id makes retries safe: appending the same event ID again returns the
original result instead of a second event.`,
		Example: `  fjord append order-42 OrderPlaced '{"total":42}' --expected no-stream
  echo '{"total":43}' | fjord append order-42 OrderAmended --expected 1`,
		Args: argsBetween(2, 3, "STREAM TYPE [DATA]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runAppend(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.expected, "expected", "any", "expected version: any, no-stream, exists or a version number")
	fl.StringVar(&f.id, "id", "", "event ID (UUID) for idempotent retries; default a new UUIDv7")
	fl.StringVar(&f.contentType, "content-type", "", "content type of DATA (default application/json)")
	fl.StringVar(&f.metadata, "metadata", "", "metadata, a JSON value")
	fl.StringVar(&f.correlation, "correlation", "", "correlation ID")
	fl.StringVar(&f.causation, "causation", "", "causation ID")
	return cmd
}

func (a *app) runAppend(cmd *cobra.Command, args []string, f appendFlags) error {
	stream := eventstore.StreamID(args[0])
	expected, err := parseExpected(f.expected)
	if err != nil {
		return usagef(cmd, "invalid --expected %q: %v", f.expected, err)
	}
	e := eventstore.Event{Type: args[1], ContentType: f.contentType, CorrelationID: f.correlation, CausationID: f.causation}
	if f.id != "" {
		if e.ID, err = uuid.Parse(f.id); err != nil {
			return usagef(cmd, "invalid --id %q: %v", f.id, err)
		}
	}
	if f.metadata != "" {
		if !json.Valid([]byte(f.metadata)) {
			return usagef(cmd, "invalid --metadata: not a JSON value: %s", f.metadata)
		}
		e.Metadata = []byte(f.metadata)
	}
	if e.Data, err = a.appendData(cmd, args); err != nil {
		return err
	}
	if isJSON(f.contentType) && len(e.Data) > 0 && !json.Valid(e.Data) {
		return usagef(cmd, "DATA is not valid JSON (use --content-type for other payloads)")
	}
	return a.withStore(func(s *eventstore.Store) error {
		res, err := s.Append(cmd.Context(), stream, expected, e)
		if err != nil {
			return appendError(stream, err)
		}
		verb := "appended to"
		if res.Duplicate {
			verb = "already appended (same event ID) to"
		}
		_, err = fmt.Fprintf(a.stdout, "%s %s: version %d, position %d\n", verb, stream, res.Version, res.Position)
		return err
	})
}

// appendData returns DATA from the arguments, or standard input when it is
// absent or "-".
func (a *app) appendData(cmd *cobra.Command, args []string) ([]byte, error) {
	if len(args) == 3 && args[2] != "-" {
		return []byte(args[2]), nil
	}
	if isTerminal(a.stdin) {
		return nil, usagef(cmd, "missing DATA: give it as the third argument or on standard input")
	}
	data, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, fmt.Errorf("reading DATA from standard input: %w", err)
	}
	return data, nil
}

// parseExpected parses --expected.
func parseExpected(s string) (eventstore.ExpectedVersion, error) {
	switch s {
	case "any":
		return eventstore.Any, nil
	case "no-stream":
		return eventstore.NoStream, nil
	case "exists":
		return eventstore.StreamExists, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return eventstore.Any, errors.New("want any, no-stream, exists or a version number")
	}
	return eventstore.Exact(eventstore.Version(v)), nil
}

func appendError(stream eventstore.StreamID, err error) error {
	var ve *eventstore.VersionError
	if errors.As(err, &ve) {
		return fmt.Errorf("append to %s: wrong expected version: expected %s, but the stream is at version %d", stream, ve.Expected, ve.Actual)
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

// isJSON reports whether a content type (empty meaning the default) is
// JSON.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
