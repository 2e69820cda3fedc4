-- Multi-PG routing: the PG holding a payment's transaction (NULL: the primary PG, for rows
-- written before routing existed).
ALTER TABLE payments ADD COLUMN pg TEXT;

-- The PG call log: one row per attempt, inserted before the call and completed after it,
-- each in its own statement outside any payment transaction.
CREATE TABLE pg_calls (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    pg               TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    order_ref        TEXT,
    idempotency_key  TEXT,
    card_no_masked   TEXT,
    requested_at     INTEGER NOT NULL,
    responded_at     INTEGER,
    status_code      INTEGER,
    outcome          TEXT,
    transaction_key  TEXT,
    reason           TEXT
);
CREATE INDEX pg_calls_order ON pg_calls (order_ref);
CREATE INDEX pg_calls_transaction ON pg_calls (transaction_key);
CREATE INDEX pg_calls_requested ON pg_calls (requested_at);
