package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/eventfeed"
)

func TestRefdataShow(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"refdata", "show"}, "countries          2026.11.25.1      249 rows"},
		{[]string{"refdata", "show", "countries", "tr"}, "TR\tTUR\t792\tTürkiye\tRepublic of Türkiye\tTurkey\n"},
		{[]string{"refdata", "show", "countries", "swaziland"}, "SZ\tSWZ\t748\tEswatini"},
		{[]string{"refdata", "show", "currencies", "IQD"}, "IQD\t368\tIraqi Dinar\t3\t0\t"},
		{[]string{"refdata", "show", "countrycurrencies", "HR"}, "HR\tEUR\t2023-01-01\t\ttrue\n"},
	}
	for _, tt := range tests {
		if out := h.mustRun("", tt.args...); !strings.Contains(out, tt.want) {
			t.Errorf("fjord %s: got\n%s\nwant it to contain %q", strings.Join(tt.args, " "), out, tt.want)
		}
	}
	if _, _, err := h.run("", "refdata", "show", "countries", "XX"); !errors.Is(err, refdata.ErrNotFound) {
		t.Errorf("unknown code: %v", err)
	}
	if _, _, err := h.run("", "refdata", "show", "planets"); err == nil {
		t.Error("unknown dataset: no error")
	}
}

func TestRefdataRollOut(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	key, bundle := filepath.Join(dir, "release.key"), filepath.Join(dir, "next.bundle")
	h.mustRun("", "refdata", "keygen", "--out", key)
	if _, _, err := h.run("", "refdata", "keygen", "--out", key); err == nil {
		t.Error("keygen overwrote a key")
	}
	h.mustRun("", "refdata", "export", "-o", bundle)
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.NewReplacer("=version 2026.11.25.1", "=version 2026.11.26.1",
		"=table colours 2026.11.25.1", "=table colours 2026.11.26.1",
		"yellowgreen\t#9acd32\n", "yellowgreen\t#9acd33\n").Replace(string(raw))
	if err := os.WriteFile(bundle, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.run("", "refdata", "publish", bundle); !errors.Is(err, refdata.ErrUnsigned) {
		t.Errorf("publishing unsigned: %v", err)
	}
	if _, _, err := h.run("", "refdata", "verify", "--pub", key+".pub", bundle); !errors.Is(err, refdata.ErrUnsigned) {
		t.Errorf("verifying unsigned: %v", err)
	}
	h.mustRun("", "refdata", "sign", "--key", key, bundle)
	if out := h.mustRun("", "refdata", "verify", "--pub", key+".pub", bundle); !strings.Contains(out, "colours            2026.11.26.1") {
		t.Errorf("verify: %s", out)
	}
	if out := h.mustRun("", "refdata", "diff", "builtin", bundle); !strings.Contains(out, "colours 2026.11.25.1 → 2026.11.26.1: 0 added, 0 removed, 1 changed\n  ~ yellowgreen\n") {
		t.Errorf("diff: %s", out)
	}
	if out := h.mustRun("", "refdata", "publish", bundle); !strings.Contains(out, "published to refdata-bundles: version 1") {
		t.Errorf("publish: %s", out)
	}
	if out := h.mustRun("", "refdata", "publish", bundle); !strings.Contains(out, "(already published)") {
		t.Errorf("publish again: %s", out)
	}
	s := eventstore.New(h.backend, nil)
	n := 0
	for e, err := range s.ReadStream(context.Background(), eventfeed.DefaultStream, eventstore.ReadStreamOptions{}) {
		if err != nil || e.Type != eventfeed.EventBundlePublished {
			t.Fatalf("%v %v", e.Type, err)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d bundle events, want 1", n)
	}
}
