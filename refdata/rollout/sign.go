// Package rollout rolls reference data out at run time: it signs and
// verifies refdata bundles with Ed25519, and its Watcher takes bundles from
// feeds (an event-store stream via refdata/eventfeed, a pubsub topic via
// refdata/topicfeed, a directory via DirFeed), verifies and applies them to a refdata.Registry, and reports
// every outcome.
//
// It is apart from refdata so that services that only look data up do not
// link the crypto packages (about 330 kB).
//
//	reg := refdata.NewRegistry(nil)
//	feed := eventfeed.New(store, nil)
//	w := rollout.NewWatcher(reg, []rollout.Feed{feed, rollout.DirFeed{Dir: "/etc/refdata"}},
//		&rollout.WatcherOptions{Trusted: keys, Status: feed})
//	go w.Run(ctx) // in main's errgroup
package rollout

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fjord-data/fjord/refdata"
)

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Sign signs b's canonical encoding with key, replacing any signature it had.
func Sign(b *refdata.Bundle, key ed25519.PrivateKey) error {
	msg, err := b.SignedBytes()
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	b.Signature = &refdata.Signature{KeyID: KeyID(pub), Sig: ed25519.Sign(key, msg)}
	return nil
}

// Verify checks b's signature against the trusted keys. The error wraps
// refdata.ErrUnsigned when there is no signature and refdata.ErrBadSignature
// when no trusted key made it.
func Verify(b *refdata.Bundle, trusted ...ed25519.PublicKey) error {
	if b.Signature == nil {
		return fmt.Errorf("%w (version %s)", refdata.ErrUnsigned, b.Version)
	}
	msg, err := b.SignedBytes()
	if err != nil {
		return err
	}
	for _, k := range trusted {
		if KeyID(k) == b.Signature.KeyID && ed25519.Verify(k, msg, b.Signature.Sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: key %s is not trusted or the signature does not match (version %s)",
		refdata.ErrBadSignature, b.Signature.KeyID, b.Version)
}

// ApplySigned decodes a bundle, verifies its signature against the trusted
// keys and applies it to reg. On any error nothing changes.
func ApplySigned(reg *refdata.Registry, data []byte, trusted ...ed25519.PublicKey) (refdata.Result, error) {
	b, err := refdata.DecodeBundle(data)
	if err != nil {
		return refdata.Result{}, err
	}
	if err := Verify(b, trusted...); err != nil {
		return refdata.Result{}, err
	}
	return reg.Apply(b)
}

// Key files hold one line: "ed25519-public BASE64" or
// "ed25519-private BASE64-OF-THE-32-BYTE-SEED".

// MarshalPublicKey returns the key-file form of a public key.
func MarshalPublicKey(k ed25519.PublicKey) []byte {
	return []byte("ed25519-public " + base64.StdEncoding.EncodeToString(k) + "\n")
}

// MarshalPrivateKey returns the key-file form of a private key.
func MarshalPrivateKey(k ed25519.PrivateKey) []byte {
	return []byte("ed25519-private " + base64.StdEncoding.EncodeToString(k.Seed()) + "\n")
}

// ParsePublicKey reads a public key file.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	raw, err := parseKey(data, "ed25519-public", ed25519.PublicKeySize)
	return ed25519.PublicKey(raw), err
}

// ParsePrivateKey reads a private key file.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	raw, err := parseKey(data, "ed25519-private", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(raw), nil
}

func parseKey(data []byte, kind string, size int) ([]byte, error) {
	text, ok := strings.CutPrefix(strings.TrimSpace(string(data)), kind+" ")
	if !ok {
		return nil, fmt.Errorf("rollout: not an %s key file (want %q and base64)", kind, kind)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != size {
		return nil, fmt.Errorf("rollout: %s key: want %d bytes of base64", kind, size)
	}
	return raw, nil
}
