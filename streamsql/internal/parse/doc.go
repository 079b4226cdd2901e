// Package parse is the lexer, parser and printer of Fjord's streaming SQL.
// Statements are parsed by recursive descent and expressions by precedence
// climbing (Pratt); every node records the line and column it starts at,
// and errors read "line L, column C: expected X, found Y".
//
//	stmt, err := parse.Parse("SELECT id, amount * 2 AS double FROM orders WHERE amount > 10 EMIT CHANGES")
//	if err != nil {
//		return err // *parse.Error with Pos
//	}
//	fmt.Println(parse.String(stmt)) // canonical SQL; parsing it again gives an equal tree
package parse
