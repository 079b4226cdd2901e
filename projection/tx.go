package projection

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// Tx is the transaction a handler writes the read model in. The projection
// commits it, with its checkpoint; a handler never commits or rolls back.
type Tx struct {
	*sql.Tx
	dialect Dialect
	suffix  string // "" for the live tables, shadowSuffix while rebuilding
	gen     int64
	stmts   *stmtCache
	local   map[string]*sql.Stmt
}

// Table returns the physical name of the read-model table base: base
// itself for the live read model, a shadow name during a rebuild.
func (tx *Tx) Table(base string) string { return base + tx.suffix }

// Index returns a name for an index (or another schema object) that is
// unique to this generation of the read model, so that a rebuild can create
// it beside the live one.
func (tx *Tx) Index(base string) string { return fmt.Sprintf("%s_g%d", base, tx.gen) }

// Dialect returns the database's SQL dialect.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// Exec executes query in the transaction, with ? placeholders rewritten for
// the dialect. A data statement (INSERT, UPDATE, DELETE, REPLACE) is
// prepared once per projector and reused; others (DDL) run as they are.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !cacheable(query) {
		return tx.Tx.ExecContext(ctx, tx.dialect.Rebind(query), args...)
	}
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRow runs a query that returns at most one row, as Exec does.
func (tx *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := tx.stmt(ctx, query)
	if err != nil {
		return tx.Tx.QueryRowContext(ctx, tx.dialect.Rebind(query), args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	for _, verb := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE", "SELECT", "WITH"} {
		if len(q) >= len(verb) && strings.EqualFold(q[:len(verb)], verb) {
			return true
		}
	}
	return false
}

func (tx *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := tx.local[query]; ok {
		return st, nil
	}
	st, err := tx.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx.local == nil {
		tx.local = map[string]*sql.Stmt{}
	}
	local := tx.Tx.StmtContext(ctx, st)
	tx.local[query] = local
	return local, nil
}

// stmtCache holds statements prepared on the database.
type stmtCache struct {
	db      *sql.DB
	dialect Dialect
	mu      struct {
		sync.Mutex
		stmts map[string]*sql.Stmt
	}
}

func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.mu.stmts[query]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, c.dialect.Rebind(query))
	if err != nil {
		return nil, err
	}
	if c.mu.stmts == nil {
		c.mu.stmts = map[string]*sql.Stmt{}
	}
	c.mu.stmts[query] = st
	return st, nil
}

// reset closes every statement (after the schema changed).
func (c *stmtCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.mu.stmts {
		st.Close()
	}
	c.mu.stmts = nil
}
