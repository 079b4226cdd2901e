package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/eventstore/memstore"
	"github.com/fjord-data/fjord/server"
)

// FuzzAppendJSON posts arbitrary bodies to Append as Connect JSON: the
// server answers 200 or a client error, never a server error, and the
// store stays gapless. Seeds are in testdata/fuzz/FuzzAppendJSON.
func FuzzAppendJSON(f *testing.F) {
	f.Add(`{"appends":[{"stream":"order-1","expected":{"noStream":{}},"events":[{"type":"OrderPlaced","data":"e30="}]}]}`)
	f.Add(`{"appends":[{"stream":"order-1","expected":{"exact":"1"},"events":[{"type":"X","id":"0190f2a0-0000-7000-8000-000000000001"}]}]}`)
	f.Add(`{"appends":[{"stream":"a","events":[{"type":"X","idBytes":"AAECAwQFBgcICQoLDA0ODw=="}]},{"stream":"b","expected":{"streamExists":{}},"events":[{"type":"Y"}]}]}`)
	f.Add(`{"appends":[{"stream":"$all","events":[]}]}`)
	f.Add(`{"unknown":1}`)
	st := eventstore.New(memstore.New(), &eventstore.Options{Limits: eventstore.Limits{MaxAppendSize: 1 << 16}})
	defer st.Close()
	h := server.New(st, nil).Handler()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/fjord.eventstore.v1.EventStoreService/Append", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		head, err := st.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var n eventstore.Position
		for e, err := range st.ReadAll(t.Context(), eventstore.ReadAllOptions{From: head, Backwards: true, Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			n = e.Position
		}
		if n != head {
			t.Fatalf("last event at %d, head %d", n, head)
		}
	})
}
