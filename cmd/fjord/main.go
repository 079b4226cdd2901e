// Command fjord is Fjord's command-line tool: it appends to and reads from
// the event store in a data directory, follows it live, and benchmarks it.
//
//	fjord append order-42 OrderPlaced '{"total":42}' --expected no-stream
//	fjord read order-42
//	fjord tail --category order
//	fjord bench eventstore --scenario single-64w --json
//	fjord refdata show countries TR
//
// Errors go to standard error and the exit code is 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], &app{open: openStore, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	if err != nil {
		os.Exit(1)
	}
}

// run executes one command line and reports its error on a.stderr.
func run(ctx context.Context, args []string, a *app) error {
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		report(a.stderr, err)
	}
	return err
}

func report(w io.Writer, err error) {
	fmt.Fprintln(w, "fjord:", err)
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", u.cmd)
	}
}
