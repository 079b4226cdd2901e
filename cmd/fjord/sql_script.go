package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// scriptStatement is one statement of a script and the line it starts on.
type scriptStatement struct {
	text   string
	line   int // 1-based
	offset int // of text in the script
}

// splitScript splits a script at the semicolons outside quotes and
// comments, dropping pieces that hold only space and comments. A
// statement's text runs from its first token, so that positions in its
// errors count from its line.
func splitScript(script string) []scriptStatement {
	var out []scriptStatement
	start, line, startLine := 0, 1, 1
	code := false // the piece has more than space and comments
	begin := func(i int) {
		if !code {
			code, start, startLine = true, i, line
		}
	}
	flush := func(end int) {
		if code {
			out = append(out, scriptStatement{text: script[start:end], line: startLine, offset: start})
		}
		code = false
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\n':
			line++
		case c == '-' && strings.HasPrefix(script[i:], "--"):
			for i < len(script) && script[i] != '\n' {
				i++
			}
			line++
		case c == '/' && strings.HasPrefix(script[i:], "/*"):
			end := strings.Index(script[i+2:], "*/")
			if end < 0 {
				end = len(script) - i - 2
			}
			line += strings.Count(script[i:i+2+end], "\n")
			i += end + 3
		case c == '\'' || c == '"' || c == '`':
			begin(i)
			for i++; i < len(script); i++ {
				if script[i] == '\n' {
					line++
				}
				if script[i] == c {
					if i+1 < len(script) && script[i+1] == c { // doubled: escaped
						i++
						continue
					}
					break
				}
			}
		case c == ';':
			flush(i)
		case c != ' ' && c != '\t' && c != '\r':
			begin(i)
		}
	}
	flush(len(script))
	return out
}

// defaultHistory is the shell's history file: fjord/sql_history in the
// user's config directory, or "" when there is none.
func defaultHistory() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "fjord", "sql_history")
}

// remember appends a statement entered at the prompt to the history file;
// failing to, it warns once per statement and goes on.
func (sh *sqlShell) remember(stmt string) {
	if sh.history == "" {
		return
	}
	err := os.MkdirAll(filepath.Dir(sh.history), 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(sh.history, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, err = f.WriteString(strings.TrimSpace(stmt) + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(sh.a.stderr, "history:", err)
	}
}

// printHistory lists the statements of the history file, numbered.
func (sh *sqlShell) printHistory() {
	if sh.history == "" {
		return
	}
	b, err := os.ReadFile(sh.history)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(sh.a.stderr, "history:", err)
		return
	}
	for i, st := range splitScript(string(b)) {
		fmt.Fprintf(sh.a.stdout, "%4d  %s;\n", i+1, strings.TrimSpace(st.text))
	}
}
