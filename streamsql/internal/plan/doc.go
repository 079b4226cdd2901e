// Package plan checks streaming SQL against a catalog of sources, types
// every expression, and builds logical plans (and their EXPLAIN text).
//
//	stmt, _ := parse.Parse("SELECT customer, COUNT(*) FROM orders GROUP BY customer EMIT CHANGES")
//	q, err := plan.Select(stmt.(*parse.Select), catalog) // *parse.Error with a position
//	fmt.Println(q.Explain())
package plan
