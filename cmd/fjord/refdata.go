package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/refdata"
	"github.com/fjord-data/fjord/refdata/eventfeed"
	"github.com/fjord-data/fjord/refdata/rollout"
)

func newRefdataCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refdata",
		Short: "Inspect, sign and publish reference-data bundles",
		Long: `Reference data (countries, currencies, subdivisions, languages, colours,
time zones) is compiled into every service and rolled out at run time as
signed bundles published on the event store's "refdata-bundles" stream.

A typical roll-out: keygen once; export the compiled-in data, edit it, raise
the versions, sign it, check it with verify, then publish it.`,
		Example: `  fjord refdata show countries TR
  fjord refdata keygen --out release.key
  fjord refdata export -o next.bundle
  fjord refdata sign --key release.key next.bundle
  fjord refdata verify --pub release.key.pub next.bundle
  fjord refdata diff builtin next.bundle
  fjord refdata publish --data ./fjord-data next.bundle`,
	}
	cmd.AddCommand(newRefdataShowCmd(a), newRefdataExportCmd(a), newRefdataKeygenCmd(a), newRefdataSignCmd(a),
		newRefdataVerifyCmd(a), newRefdataDiffCmd(a), newRefdataPublishCmd(a))
	return cmd
}

// readBundle reads a bundle file; "builtin" is the compiled-in data.
func readBundle(path string) (*refdata.Bundle, error) {
	if path == "builtin" {
		return refdata.Default().Bundle(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := refdata.DecodeBundle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func newRefdataShowCmd(a *app) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "show [DATASET] [CODE]",
		Short: "Show datasets, a dataset's rows, or the rows of one code",
		Long: `Without arguments, list the datasets with their versions, sources and row
counts. With DATASET, print its rows (tab-separated, with a header). With
CODE, print the rows whose first column is CODE (any case); for countries
CODE may also be a name ("turkey").`,
		Args: argsBetween(0, 2, "[DATASET] [CODE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readBundle(from)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				fmt.Fprintf(a.stdout, "bundle %s created %s\n", b.Version, b.Created.Format("2006-01-02T15:04:05Z"))
				for _, t := range b.Tables {
					fmt.Fprintf(a.stdout, "%-18s %-14s %6d rows  %s\n", t.Name, t.Version, len(t.Rows), t.Source)
				}
				return nil
			}
			t, ok := b.Table(args[0])
			if !ok {
				return usagef(cmd, "no dataset %q in %s (datasets: %s)", args[0], from, strings.Join(refdata.Datasets(), ", "))
			}
			fmt.Fprintln(a.stdout, strings.Join(refdata.Columns(t.Name), "\t"))
			return showRows(a.stdout, t, args[1:])
		},
	}
	cmd.Flags().StringVar(&from, "bundle", "builtin", `bundle file to show, or "builtin" for the compiled-in data`)
	return cmd
}

// showRows prints t's rows, or those whose first column is code[0].
func showRows(w io.Writer, t *refdata.Table, code []string) error {
	n := 0
	for _, r := range t.Rows {
		if len(code) == 0 || strings.EqualFold(r[0], code[0]) {
			fmt.Fprintln(w, strings.Join(r, "\t"))
			n++
		}
	}
	if len(code) > 0 && n == 0 && t.Name == refdata.DatasetCountries {
		if c, err := refdata.Default().CountryByName(code[0]); err == nil {
			return showRows(w, t, []string{c.Alpha2})
		}
	}
	if len(code) > 0 && n == 0 {
		return fmt.Errorf("%w: %s has no entry %q", refdata.ErrNotFound, t.Name, code[0])
	}
	return nil
}

func newRefdataExportCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the compiled-in data as an unsigned bundle, to edit and sign",
		Args:  argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := refdata.Default().Bundle().Encode()
			if err != nil {
				return err
			}
			return writeOut(a, out, data, 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "-", `file to write, "-" for standard output`)
	return cmd
}

func writeOut(a *app, path string, data []byte, perm os.FileMode) error {
	if path == "-" {
		_, err := a.stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, perm)
}

func newRefdataKeygenCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make an Ed25519 signing key: FILE (private, mode 0600) and FILE.pub",
		Args:  argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef(cmd, "missing --out FILE")
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("writing the private key (an existing file is never overwritten): %w", err)
			}
			_, err = f.Write(rollout.MarshalPrivateKey(priv))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(out+".pub", rollout.MarshalPublicKey(pub), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "key %s: private %s, public %s.pub\n", rollout.KeyID(pub), out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create; the public key goes to FILE.pub")
	return cmd
}

func newRefdataSignCmd(a *app) *cobra.Command {
	var keyFile, out string
	cmd := &cobra.Command{
		Use:   "sign --key KEY BUNDLE",
		Short: "Sign a bundle (in place unless --out)",
		Args:  argsBetween(1, 1, "BUNDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return usagef(cmd, "missing --key KEY (make one with fjord refdata keygen)")
			}
			raw, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			key, err := rollout.ParsePrivateKey(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", keyFile, err)
			}
			b, err := readBundle(args[0])
			if err != nil {
				return err
			}
			if err := rollout.Sign(b, key); err != nil {
				return err
			}
			data, err := b.Encode()
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0]
			}
			if err := writeOut(a, out, data, 0o644); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(a.stdout, "signed bundle %s with key %s: %s\n", b.Version, b.Signature.KeyID, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file")
	cmd.Flags().StringVarP(&out, "out", "o", "", `file to write (default: the bundle itself; "-" for standard output)`)
	return cmd
}

func newRefdataVerifyCmd(a *app) *cobra.Command {
	var pubFiles []string
	cmd := &cobra.Command{
		Use:   "verify --pub KEY.pub BUNDLE",
		Short: "Check a bundle's signature and validate it against the compiled-in data",
		Args:  argsBetween(1, 1, "BUNDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []ed25519.PublicKey
			for _, f := range pubFiles {
				raw, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				k, err := rollout.ParsePublicKey(raw)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				keys = append(keys, k)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			res, err := rollout.ApplySigned(refdata.NewRegistry(nil), data, keys...)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "bundle %s: signature good, valid over the compiled-in data %s\n", res.Version, refdata.Default().Version())
			for _, d := range res.Applied {
				fmt.Fprintf(a.stdout, "  %-18s %s  %d rows\n", d.Name, d.Version, d.Rows)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&pubFiles, "pub", nil, "trusted public key file (repeatable)")
	return cmd
}

func newRefdataDiffCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff A B",
		Short: `Show what changes from bundle A to bundle B ("builtin" is the compiled-in data)`,
		Args:  argsBetween(2, 2, "A B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := readBundle(args[0])
			if err != nil {
				return err
			}
			y, err := readBundle(args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "bundle %s → %s\n", x.Version, y.Version)
			for _, d := range refdata.Diff(x, y) {
				fmt.Fprintf(a.stdout, "%s %s → %s: %d added, %d removed, %d changed\n",
					d.Name, orDash(d.FromVersion), orDash(d.ToVersion), len(d.Added), len(d.Removed), len(d.Changed))
				for _, l := range []struct {
					sign string
					keys []string
				}{{"+", d.Added}, {"-", d.Removed}, {"~", d.Changed}} {
					for _, k := range l.keys {
						fmt.Fprintf(a.stdout, "  %s %s\n", l.sign, k)
					}
				}
			}
			return nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newRefdataPublishCmd(a *app) *cobra.Command {
	var stream string
	cmd := &cobra.Command{
		Use:   "publish BUNDLE",
		Short: "Append a signed bundle to the event store's refdata stream (--data or --server)",
		Long: `Append a signed bundle to the refdata stream of the event store in --data
(or served at --server). Watchers of that stream verify, validate and apply
it, and report the outcome on the "refdata-status" stream. Publishing the
same bundle twice appends it once.`,
		Args: argsBetween(1, 1, "BUNDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return a.withStore(func(s *eventstore.Store) error {
				res, err := eventfeed.New(s, &eventfeed.Options{Stream: eventstore.StreamID(stream)}).Publish(cmd.Context(), data)
				if err != nil {
					return err
				}
				note := ""
				if res.Duplicate {
					note = " (already published)"
				}
				fmt.Fprintf(a.stdout, "published to %s: version %d, position %d%s\n", stream, res.Version, res.Position, note)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&stream, "stream", string(eventfeed.DefaultStream), "stream to append to")
	return cmd
}
