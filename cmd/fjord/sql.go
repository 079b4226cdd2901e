package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fjord-data/fjord/eventstore"
	"github.com/fjord-data/fjord/streamsql"
	"github.com/fjord-data/fjord/streamsql/pebblestate"
)

type sqlFlags struct {
	execute, file, state, history string
	fromStart                     bool
}

func newSQLCmd(a *app) *cobra.Command {
	var f sqlFlags
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Streaming SQL shell over the event store",
		Long: `Run streaming SQL statements, separated by ';', from --execute, from a
script file (--file), or from standard input (a prompt when it is a
terminal). An error in a script names the line where its statement starts.
Definitions and the state of persistent queries (CREATE TABLE|STREAM … AS
SELECT) live in --state (default: the "sql" folder of --data) and run while
the shell runs. With --server, statements run in that server instead (see
fjord serve), where persistent queries keep running.

At the prompt, statements are saved to --history (default: fjord/sql_history
in the user's config directory, "" for none); \history lists them.

Pull queries print the current rows of a materialized table. Push queries
(EMIT CHANGES, EMIT FINAL) print one change per line (+ insert, ~ update,
- delete) until their LIMIT or until interrupted; they start at the head of
the store, or with --from-start at its first event.`,
		Example: `  fjord sql --execute "CREATE STREAM orders (id STRING KEY, amount DOUBLE) WITH (SOURCE='order-')"
  fjord sql --execute "SELECT id, amount FROM orders EMIT CHANGES LIMIT 10"
  fjord sql -f setup.sql
  fjord sql --server http://127.0.0.1:7717
  echo "SHOW QUERIES;" | fjord sql`,
		Args: argsBetween(0, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runSQL(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.execute, "execute", "e", "", "statements to run instead of reading standard input")
	fl.StringVarP(&f.file, "file", "f", "", "script file of statements to run instead of reading standard input")
	fl.StringVar(&f.history, "history", defaultHistory(), "file that keeps the statements entered at the prompt")
	fl.StringVar(&f.state, "state", "", `directory of definitions and query state (default "<data>/sql")`)
	fl.BoolVar(&f.fromStart, "from-start", false, "run push queries from the first event (default: from the head)")
	return cmd
}

func (a *app) runSQL(ctx context.Context, f sqlFlags) error {
	if f.execute != "" && f.file != "" {
		return errors.New("give --execute or --file, not both")
	}
	if a.serverURL != "" {
		r, err := newRemoteSQL(a.serverURL, a.token)
		if err != nil {
			return err
		}
		defer r.Close()
		return (&sqlShell{a: a, e: r, fromStart: f.fromStart, history: f.history}).run(ctx, f)
	}
	dir := f.state
	if dir == "" {
		dir = filepath.Join(a.dataDir, "sql")
	}
	return a.withStore(func(store *eventstore.Store) (err error) {
		st, err := pebblestate.Open(dir, nil)
		if err != nil {
			return err
		}
		e, err := streamsql.New(store, &streamsql.Options{State: st})
		if err != nil {
			st.Close()
			return err
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(runCtx) }()
		defer func() {
			cancel()
			err = errors.Join(err, <-done, e.Close())
		}()
		return (&sqlShell{a: a, e: e, fromStart: f.fromStart, history: f.history}).run(ctx, f)
	})
}

// run runs --execute, --file or standard input.
func (sh *sqlShell) run(ctx context.Context, f sqlFlags) error {
	switch {
	case f.execute != "":
		return sh.script(ctx, "", f.execute)
	case f.file != "":
		b, err := os.ReadFile(f.file)
		if err != nil {
			return err
		}
		return sh.script(ctx, f.file, string(b))
	}
	return sh.input(ctx)
}

type sqlShell struct {
	a         *app
	e         sqlRunner
	fromStart bool
	history   string // file of statements entered at the prompt; "" for none
}

// input reads statements from standard input, with a prompt on a
// terminal; errors in a statement are printed and the shell goes on.
func (sh *sqlShell) input(ctx context.Context) error {
	a := sh.a
	interactive := isTerminal(a.stdin)
	sc := bufio.NewScanner(a.stdin)
	var buf strings.Builder
	prompt := func() {
		if interactive {
			if buf.Len() == 0 {
				fmt.Fprint(a.stdout, "fjord> ")
			} else {
				fmt.Fprint(a.stdout, "   ... ")
			}
		}
	}
	prompt()
	for sc.Scan() {
		if interactive && buf.Len() == 0 && strings.TrimSpace(sc.Text()) == `\history` {
			sh.printHistory()
			prompt()
			continue
		}
		buf.WriteString(sc.Text() + "\n")
		if strings.HasSuffix(strings.TrimSpace(sc.Text()), ";") {
			if interactive {
				sh.remember(buf.String())
			}
			err := sh.script(ctx, "", buf.String())
			buf.Reset()
			if err != nil {
				if !interactive {
					return err
				}
				fmt.Fprintln(a.stderr, err)
			}
		}
		prompt()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if strings.TrimSpace(buf.String()) != "" {
		return sh.script(ctx, "", buf.String())
	}
	return nil
}

// script runs the statements of a script (from file name, or "" for
// --execute and standard input); an error names the line where its
// statement starts.
func (sh *sqlShell) script(ctx context.Context, name, script string) error {
	if _, err := streamsql.Split(script); err != nil {
		return scriptError(name, 0, err) // its position is the script's
	}
	for _, st := range splitScript(script) {
		if err := sh.statement(ctx, st.text); err != nil {
			return scriptError(name, st.line, err)
		}
	}
	return nil
}

func scriptError(name string, line int, err error) error {
	switch {
	case name != "" && line > 0:
		return fmt.Errorf("%s:%d: %w", name, line, err)
	case name != "":
		return fmt.Errorf("%s: %w", name, err)
	case line > 1:
		return fmt.Errorf("statement at line %d: %w", line, err)
	}
	return err
}

func (sh *sqlShell) statement(ctx context.Context, stmt string) error {
	a := sh.a
	if !streamsql.IsQuery(stmt) {
		res, err := sh.e.Exec(ctx, stmt)
		if err != nil {
			return err
		}
		printResult(a.stdout, res)
		return nil
	}
	var tw *tabwriter.Writer
	for ch, err := range sh.e.Query(ctx, stmt, &streamsql.QueryOptions{FromStart: sh.fromStart}) {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				break
			}
			return err
		}
		if tw == nil {
			tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			cols := []string{"op"}
			for _, c := range ch.Columns {
				cols = append(cols, c.Name)
			}
			if !ch.WindowStart.IsZero() {
				cols = append(cols, "window")
			}
			fmt.Fprintln(tw, strings.Join(cols, "\t"))
		}
		fmt.Fprintln(tw, changeLine(ch))
		tw.Flush() // push queries print as changes arrive
	}
	if tw == nil {
		fmt.Fprintln(a.stdout, "(no rows)")
	}
	return nil
}

func changeLine(ch streamsql.Change) string {
	op := map[streamsql.Op]string{streamsql.Insert: "+", streamsql.Update: "~", streamsql.Delete: "-"}[ch.Op]
	parts := []string{op}
	for _, v := range ch.Row {
		parts = append(parts, sqlValue(v))
	}
	if !ch.WindowStart.IsZero() {
		parts = append(parts, ch.WindowStart.Format(time.RFC3339)+"/"+ch.WindowEnd.Format(time.RFC3339))
	}
	return strings.Join(parts, "\t")
}

func sqlValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

func printResult(w io.Writer, res streamsql.Result) {
	if res.Plan != "" {
		fmt.Fprintln(w, res.Plan)
	}
	if len(res.Columns) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
		for _, r := range res.Rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
	}
	if res.Message != "" && len(res.Columns) == 0 {
		fmt.Fprintln(w, res.Message)
	}
}
