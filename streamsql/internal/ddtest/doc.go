// Package ddtest runs data-driven tests: files of cases, each a command
// line, an input and the expected output.
//
//	# comment
//	command arg…
//	input lines
//	----
//	expected output lines
//
// An expected output ends at the first blank line, so outputs contain no
// blank lines. With FJORD_REWRITE=1 the files are rewritten with the actual outputs, to
// be reviewed before committing.
//
//	ddtest.Run(t, "testdata/*.txt", func(t *testing.T, c *ddtest.Case) string {
//		return eval(c.Input)
//	})
package ddtest
