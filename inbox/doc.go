// Package inbox makes message consumers idempotent: a consumer handles a
// message in a transaction of its own database that also records
// (consumer, source, id), so a message delivered again — at-least-once
// delivery, an outbox relay that failed over — has no second effect.
//
//	in, err := inbox.Open(ctx, db, nil) // creates the fjord_inbox table
//	…
//	applied, err := in.Handle(ctx, "billing", msg, func(ctx context.Context, tx *sql.Tx) error {
//		_, err := tx.ExecContext(ctx, "UPDATE invoices SET paid = true WHERE order_id = ?", msg.Subject)
//		return err
//	})
//	// applied is false for a redelivery: nothing ran, the message can be acknowledged.
//
// Handler adapts such a func to a subscription's message handler, and
// HandleBatch handles a batch in one transaction. Records are kept until
// purged (Purge, RunPurge): keep them longer than the broker may redeliver.
//
// It works on SQLite and PostgreSQL through database/sql.
package inbox
