package rollout_test

import (
	"context"
	"crypto/ed25519"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/internal/bundletest"
	"github.com/fjord-data/fjord/refdata/rollout"
)

// sliceFeed offers fixed bundles, then waits for ctx.
type sliceFeed []rollout.Incoming

func (f sliceFeed) Bundles(ctx context.Context) iter.Seq2[rollout.Incoming, error] {
	return func(yield func(rollout.Incoming, error) bool) {
		for _, in := range f {
			if !yield(in, nil) {
				return
			}
		}
		<-ctx.Done()
		yield(rollout.Incoming{}, ctx.Err())
	}
}

// statusLog records reports and signals each one.
type statusLog struct {
	got chan rollout.Status
}

func (l *statusLog) Report(_ context.Context, st rollout.Status) error {
	l.got <- st
	return nil
}

func TestWatcher(t *testing.T) {
	defer goleak.VerifyNone(t)
	key := bundletest.Key(1)
	pub := key.Public().(ed25519.PublicKey)
	reg := refdata.NewRegistry(nil)
	base := reg.Current()
	good := bundletest.Next(t, base, "2026.11.26.1", func(b *refdata.Bundle) {
		bundletest.SetRow(b, refdata.DatasetColours, []string{"fjordblue", "#1d4e89"})
	}, refdata.DatasetColours)
	unsigned, _ := good.Encode()
	feed := sliceFeed{
		{Origin: "unsigned", Data: unsigned},
		{Origin: "garbage", Data: []byte("hello")},
		{Origin: "wrong key", Data: bundletest.Signed(t, bundletest.Next(t, base, "2026.11.26.1", nil, refdata.DatasetColours), bundletest.Key(2))},
		{Origin: "good", Data: bundletest.Signed(t, good, key)},
		{Origin: "replayed", Data: bundletest.Signed(t, good, key)},
	}
	log := &statusLog{got: make(chan rollout.Status, len(feed))}
	w := rollout.NewWatcher(reg, []rollout.Feed{feed}, &rollout.WatcherOptions{Trusted: []ed25519.PublicKey{pub}, Status: log, Instance: "test"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	type outcome struct {
		Origin, Version string
		Applied         bool
		Reason          string // a part of it
		Current         string
	}
	want := []outcome{
		{"unsigned", "2026.11.26.1", false, "not signed", base.Version()},
		{"garbage", "", false, "malformed", base.Version()},
		{"wrong key", "2026.11.26.1", false, "bad bundle signature", base.Version()},
		{"good", "2026.11.26.1", true, "", "2026.11.26.1"},
		{"replayed", "2026.11.26.1", false, "not newer", "2026.11.26.1"},
	}
	var got []outcome
	for range want {
		st := <-log.got
		reason := ""
		for _, w := range want {
			if w.Origin == st.Origin && w.Reason != "" && strings.Contains(st.Reason, w.Reason) {
				reason = w.Reason
			}
		}
		if st.Instance != "test" || (st.Applied && st.Reason != "") || (!st.Applied && st.Reason == "") {
			t.Errorf("status %+v", st)
		}
		got = append(got, outcome{st.Origin, st.Version, st.Applied, reason, st.Current})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("outcomes (-want +got):\n%s", d)
	}
	if _, err := reg.Current().Colour("fjordblue"); err != nil {
		t.Error(err)
	}
}

func TestDirFeed(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		key := bundletest.Key(1)
		dir := t.TempDir()
		reg := refdata.NewRegistry(nil)
		var seen []string
		w := rollout.NewWatcher(reg, []rollout.Feed{rollout.DirFeed{Dir: dir, Interval: time.Minute}},
			&rollout.WatcherOptions{Trusted: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)},
				OnStatus: func(st rollout.Status) { seen = append(seen, filepath.Base(st.Origin)+" "+st.Version) }})
		write := func(name string, data []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("a.bundle", bundletest.Signed(t, bundletest.Next(t, reg.Current(), "2026.11.26.1", nil, refdata.DatasetColours), key))
		write("ignored.txt", []byte("x"))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		synctest.Wait()
		if d := cmp.Diff([]string{"a.bundle 2026.11.26.1"}, seen); d != "" {
			t.Errorf("first look (-want +got):\n%s", d)
		}
		write("b.bundle", bundletest.Signed(t, bundletest.Next(t, reg.Current(), "2026.11.26.2", nil, refdata.DatasetColours), key))
		<-time.After(time.Minute) // synctest: the fake clock moves on to the next look at once
		synctest.Wait()
		if got := reg.Current().Version(); got != "2026.11.26.2" {
			t.Errorf("version %s after the second look", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeyFiles(t *testing.T) {
	key := bundletest.Key(3)
	priv, err := rollout.ParsePrivateKey(rollout.MarshalPrivateKey(key))
	if err != nil || !priv.Equal(key) {
		t.Fatalf("private key round trip: %v", err)
	}
	pub, err := rollout.ParsePublicKey(rollout.MarshalPublicKey(key.Public().(ed25519.PublicKey)))
	if err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	for _, bad := range []string{"", "ed25519-public AAAA", "ssh-ed25519 AAAA", string(rollout.MarshalPrivateKey(key))} {
		if _, err := rollout.ParsePublicKey([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted it", bad)
		}
	}
}
