package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
)

// app holds what the commands share: where the store lives, how to open
// it, and the process's standard streams.
type app struct {
	open           func(dataDir string) (*eventstore.Store, error)
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	dataDir        string // --data
	serverURL      string // --server: work on a served store instead of dataDir
	token          string // --token: bearer token for --server
	postgres       string // --postgres (serve): work on PostgreSQL instead of dataDir
	schema         string // --schema: the PostgreSQL schema
	// listen opens the server's listener; nil means net.Listen.
	listen func(network, address string) (net.Listener, error)
}

// openStore opens the store in the --data directory, or the one in
// PostgreSQL at --postgres, or connects to the one served at --server.
func (a *app) openStore() (*eventstore.Store, error) {
	if a.postgres != "" {
		return a.openPostgresStore()
	}
	if a.serverURL != "" {
		s, err := openRemote(a.serverURL, a.token)
		if err != nil {
			return nil, fmt.Errorf("connecting to the event store at %s: %w", a.serverURL, err)
		}
		return s, nil
	}
	s, err := a.open(a.dataDir)
	if err != nil {
		return nil, fmt.Errorf("opening the event store in %s: %w", a.dataDir, err)
	}
	return s, nil
}

// withStore runs f on the store in the --data directory and closes it.
func (a *app) withStore(f func(s *eventstore.Store) error) (err error) {
	s, err := a.openStore()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	return f(s)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "fjord",
		Short:         "Fjord: data building blocks for Go microservices",
		Long:          "fjord works with the event store in a data directory (--data) and benchmarks it.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := a.getenv("FJORD_DATA")
	if def == "" {
		def = "./fjord-data"
	}
	root.PersistentFlags().StringVar(&a.dataDir, "data", def, "data directory (env FJORD_DATA)")
	root.PersistentFlags().StringVar(&a.serverURL, "server", a.getenv("FJORD_SERVER"),
		"work on the event store served by `fjord serve` at this URL, such as http://127.0.0.1:7717, instead of --data (env FJORD_SERVER)")
	root.PersistentFlags().StringVar(&a.token, "token", a.getenv("FJORD_TOKEN"),
		"bearer token for --server, when the server has an auth file (env FJORD_TOKEN)")
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	root.AddCommand(newAppendCmd(a), newReadCmd(a), newTailCmd(a), newStreamsCmd(a), newVersionCmd(a), newBenchCmd(a),
		newServeCmd(a), newPgstoreCmd(a), newRefdataCmd(a), newKafkaCmd(a))
	root.AddCommand(newPubSubCmd(a))
	root.AddCommand(newSQLCmd(a))
	return root
}

// usageError is a mistake in the command line: a bad flag or argument.
type usageError struct {
	cmd string // command path, for the hint to run --help
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// argsBetween accepts lo to hi positional arguments, described by names
// such as "STREAM TYPE [DATA]", and names the one missing or extra.
func argsBetween(lo, hi int, names string) cobra.PositionalArgs {
	want := strings.Fields(names)
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			return usagef(cmd, "missing %s (want %s)", want[len(args)], names)
		case len(args) > hi:
			return usagef(cmd, "unexpected argument %q (want %s)", args[hi], names)
		}
		return nil
	}
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
