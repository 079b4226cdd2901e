package ddtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Case is one test case.
type Case struct {
	File    string
	Line    int      // line of the command
	Cmd     string   // first word of the command line
	Args    []string // the remaining words
	Input   string
	want    string
	wantPos int
}

// Run runs every case of every file matching glob through f, which
// returns the output for a case, and compares it with the expected one.
func Run(t *testing.T, glob string, f func(t *testing.T, c *Case) string) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files match %s (%v)", glob, err)
	}
	rewrite := os.Getenv("FJORD_REWRITE") == "1"
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cases, lines := parseFile(t, file, string(data))
			gots := make([]string, len(cases))
			for i, c := range cases {
				gots[i] = strings.TrimRight(f(t, c), "\n")
				if !rewrite && gots[i] != c.want {
					t.Errorf("%s:%d: %s\n%s\n----\ngot:\n%s\nwant:\n%s", file, c.Line, c.Cmd, c.Input, gots[i], c.want)
				}
			}
			if rewrite {
				for i := len(cases) - 1; i >= 0; i-- {
					lines = replace(lines, cases[i], gots[i])
				}
				if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func parseFile(t *testing.T, file, data string) ([]*Case, []string) {
	lines := strings.Split(data, "\n")
	var cases []*Case
	for i := 0; i < len(lines); {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		f := strings.Fields(l)
		c := &Case{File: file, Line: i + 1, Cmd: f[0], Args: f[1:]}
		i++
		var in []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			in = append(in, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: case has no ----", file, c.Line)
		}
		i++
		c.wantPos = i
		var out []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		c.Input, c.want = strings.Join(in, "\n"), strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases, lines
}

// replace swaps a case's expected output for got. Callers replace from the
// last case to the first, so the positions of earlier cases stay valid.
func replace(lines []string, c *Case, got string) []string {
	end := c.wantPos
	for end < len(lines) && lines[end] != "" {
		end++
	}
	var repl []string
	if got != "" {
		repl = strings.Split(got, "\n")
	}
	out := append([]string{}, lines[:c.wantPos]...)
	out = append(out, repl...)
	return append(out, lines[end:]...)
}
