-- The whole schema of the commerce service, SQLite dialect (the Postgres one is the same
-- schema with Postgres types). Money in integer minor units, times in milliseconds since the
-- Unix epoch.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    points      INTEGER NOT NULL CHECK (points >= 0)
);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    price       INTEGER NOT NULL CHECK (price > 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    -- The id the PG sees (at least 6 characters), e.g. ORD-000042.
    order_ref       TEXT    UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    status          TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    total_amount    INTEGER NOT NULL CHECK (total_amount > 0),
    -- The successful payment that paid the order (any other SUCCESS is an extra charge).
    paid_payment_id INTEGER,
    -- Stock is released at most once (a failed card order).
    stock_released  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    product_id  INTEGER NOT NULL REFERENCES products (id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One row per payment attempt (and per PG transaction discovered for an order).
CREATE TABLE payments (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    method           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    amount           INTEGER NOT NULL,
    card_type        TEXT,
    -- BIN (first 6) + last 4 only, e.g. 1234-56**-****-3456. Never the full number.
    card_no_masked   TEXT,
    -- Sent as Idempotency-Key on every attempt of this charge.
    idempotency_key  TEXT    UNIQUE,
    transaction_key  TEXT    UNIQUE,
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_checked_at  INTEGER
);
CREATE INDEX payments_open ON payments (status, id);
CREATE INDEX payments_order ON payments (order_id);

-- Every transition of every payment, with its source.
CREATE TABLE payment_history (
    id           INTEGER PRIMARY KEY,
    payment_id   INTEGER NOT NULL REFERENCES payments (id),
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    detail       TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX payment_history_payment ON payment_history (payment_id, id);

-- Transactional outbox: written in the same transaction as the change it announces.
CREATE TABLE outbox_events (
    id               INTEGER PRIMARY KEY,
    aggregate_id     INTEGER NOT NULL,
    event_type       TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    published_at     INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    dead             INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT
);
CREATE INDEX outbox_unpublished ON outbox_events (published_at, id);

-- Same (user, key) → same order.
CREATE TABLE idempotency_keys (
    user_id       INTEGER NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    order_id      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Single-runner leases for background jobs across instances.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT,
    expires_at  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO job_leases (name, owner, expires_at) VALUES ('recovery', NULL, 0);
