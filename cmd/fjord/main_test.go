package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/driver"
	"github.com/fjord-data/fjord/eventstore/memstore"
)

// keepOpen lets several commands of one test share one in-memory backend,
// as they would share a data directory.
type keepOpen struct{ *memstore.Store }

func (keepOpen) Close() error { return nil }

var _ driver.Backend = keepOpen{}

// harness runs command lines against one shared store.
type harness struct {
	t       *testing.T
	backend keepOpen
	dirs    []string // --data of each store opened
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, backend: keepOpen{memstore.New()}}
	t.Cleanup(func() { h.backend.Store.Close() })
	return h
}

func (h *harness) app(stdin io.Reader, stdout, stderr io.Writer, env map[string]string) *app {
	return &app{
		open: func(dir string) (*eventstore.Store, error) {
			h.dirs = append(h.dirs, dir)
			return eventstore.New(h.backend, nil), nil
		},
		stdin: stdin, stdout: stdout, stderr: stderr,
		getenv: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			if k == "FJORD_NATS" {
				return "off" // else serve starts NATS in ./fjord-data; serve_nats_test.go asks for it
			}
			if k == "FJORD_SQL" {
				return "false" // else serve keeps SQL state in ./fjord-data; serve_sql_test.go asks for it
			}
			return ""
		},
	}
}

// run runs one command line and returns its standard output and error.
func (h *harness) run(stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(h.t.Context(), args, h.app(strings.NewReader(stdin), &out, &errOut, nil))
	return out.String(), errOut.String(), err
}

func (h *harness) mustRun(stdin string, args ...string) string {
	h.t.Helper()
	out, errOut, err := h.run(stdin, args...)
	if err != nil {
		h.t.Fatalf("fjord %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// decodeEvents parses --json output, dropping the fields a test cannot
// know (IDs, times).
func decodeEvents(t *testing.T, out string) []eventJSON {
	t.Helper()
	var evs []eventJSON
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e eventJSON
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("decoding %q: %v", out, err)
		}
		if e.ID == "" || e.Time.IsZero() {
			t.Errorf("event without ID or time: %+v", e)
		}
		evs = append(evs, e)
	}
	return evs
}

var ignoreUnknowable = cmpopts.IgnoreFields(eventJSON{}, "ID", "Time")

func TestDataDirFlagAndEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, []string{"streams"}, "./fjord-data"},
		{"env", map[string]string{"FJORD_DATA": "/var/fjord"}, []string{"streams"}, "/var/fjord"},
		{"flag over env", map[string]string{"FJORD_DATA": "/var/fjord"}, []string{"--data", "/srv/x", "streams"}, "/srv/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if err := run(t.Context(), tt.args, h.app(strings.NewReader(""), io.Discard, io.Discard, tt.env)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tt.want}, h.dirs); diff != "" {
				t.Errorf("data directories opened (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out := newHarness(t).mustRun("", "version")
	if !strings.HasPrefix(out, "fjord ") || !strings.Contains(out, "go1.") {
		t.Errorf("version printed %q", out)
	}
}

// TestCanceledContext checks that an interrupted command stops with the
// cancellation as its error.
func TestCanceledContext(t *testing.T) {
	h := newHarness(t)
	h.mustRun("", "append", "a-1", "T", "{}")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"append", "a-1", "T", "{}"}, h.app(strings.NewReader(""), &out, &errOut, nil))
	if err == nil || !strings.Contains(errOut.String(), "context canceled") {
		t.Errorf("got %v, stderr %q; want a cancellation error", err, errOut.String())
	}
}

var (
	zeroTime      time.Time
	ignoreUpdated = cmpopts.IgnoreFields(streamJSON{}, "Updated")
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
