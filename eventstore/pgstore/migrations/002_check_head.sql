-- Version 2: check_head, which an optimistic commit transaction calls after
-- writing its rows at positions first, first+1, …: it takes the commit
-- lock (advisory lock key) without waiting, and fails with SQLSTATE FJ001
-- when the lock is busy, when the last committed row is not at first-1, or
-- when that row's time is later than the transaction's time t. The
-- transaction then writes nothing, and is decided and written again. See
-- the package documentation.
CREATE FUNCTION {{schema}}.check_head(key bigint, first bigint, t timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	p  bigint;
	pt timestamptz;
BEGIN
	IF NOT pg_try_advisory_xact_lock(key) THEN
		RAISE EXCEPTION 'pgstore: the commit lock is busy' USING ERRCODE = 'FJ001';
	END IF;
	-- A VOLATILE function's query takes a new snapshot: it sees every
	-- transaction that committed before the lock was taken.
	SELECT position, time INTO p, pt FROM {{schema}}.events WHERE position < first ORDER BY position DESC LIMIT 1;
	IF coalesce(p, 0) <> first - 1 OR pt > t THEN
		RAISE EXCEPTION 'pgstore: the head is %, not %: another transaction committed first', coalesce(p, 0), first - 1
			USING ERRCODE = 'FJ001';
	END IF;
END
$$;
