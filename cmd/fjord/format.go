package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fjord-data/fjord/eventstore"
)

// eventJSON is the --json form of an event: one object per line. Data and
// metadata that are valid JSON are embedded as is; anything else is base64.
type eventJSON struct {
	Position       uint64          `json:"position"`
	Stream         string          `json:"stream"`
	Version        uint64          `json:"version"`
	Type           string          `json:"type"`
	ID             string          `json:"id"`
	Time           time.Time       `json:"time"`
	ContentType    string          `json:"content_type"`
	Data           json.RawMessage `json:"data,omitempty"`
	DataBase64     []byte          `json:"data_base64,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	MetadataBase64 []byte          `json:"metadata_base64,omitempty"`
	CorrelationID  string          `json:"correlation_id,omitempty"`
	CausationID    string          `json:"causation_id,omitempty"`
}

func toJSON(e eventstore.RecordedEvent) eventJSON {
	j := eventJSON{Position: uint64(e.Position), Stream: string(e.Stream), Version: uint64(e.Version), Type: e.Type,
		ID: e.ID.String(), Time: e.Time.UTC(), ContentType: e.ContentType, CorrelationID: e.CorrelationID, CausationID: e.CausationID}
	j.Data, j.DataBase64 = rawOrBytes(e.Data)
	j.Metadata, j.MetadataBase64 = rawOrBytes(e.Metadata)
	return j
}

func rawOrBytes(b []byte) (json.RawMessage, []byte) {
	if len(b) == 0 {
		return nil, nil
	}
	if json.Valid(b) {
		return compact(b), nil
	}
	return nil, b
}

// compact removes insignificant space so that one event stays on one line.
func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// eventPrinter writes events as JSON lines or as rows of an aligned table.
type eventPrinter struct {
	w       io.Writer
	json    bool
	enc     *json.Encoder
	started bool
}

func newEventPrinter(w io.Writer, jsonLines bool) *eventPrinter {
	return &eventPrinter{w: w, json: jsonLines, enc: json.NewEncoder(w)}
}

const eventRow = "%10s  %8s  %-24s  %-20s  %-24s  %s\n"

// header prints the table header, once; nothing for JSON.
func (p *eventPrinter) header() error {
	if p.json || p.started {
		return nil
	}
	p.started = true
	_, err := fmt.Fprintf(p.w, eventRow, "POSITION", "VERSION", "STREAM", "TYPE", "TIME", "DATA")
	return err
}

func (p *eventPrinter) print(e eventstore.RecordedEvent) error {
	if p.json {
		return p.enc.Encode(toJSON(e))
	}
	if err := p.header(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(p.w, eventRow, fmt.Sprint(e.Position), fmt.Sprint(e.Version), e.Stream, e.Type,
		formatTime(e.Time), preview(e.Data, 60))
	return err
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// preview shows the start of a payload on one line: at most n runes of
// text, or its size when it is binary.
func preview(b []byte, n int) string {
	if isBinary(b) {
		return fmt.Sprintf("<%d bytes>", len(b))
	}
	if json.Valid(b) {
		b = compact(b)
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, string(b))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// isBinary reports whether b is not text: invalid UTF-8, or control
// characters other than white space.
func isBinary(b []byte) bool {
	if !utf8.Valid(b) {
		return true
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return true
		}
	}
	return false
}
