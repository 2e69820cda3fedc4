-- The whole schema of the commerce service, Postgres dialect (the SQLite one is the same
-- schema with SQLite's types). Money in integer minor units, times in milliseconds since the
-- Unix epoch, flags as 0/1 integers so one set of statements serves both engines.

CREATE TABLE users (
    id          BIGINT  PRIMARY KEY,
    name        TEXT    NOT NULL,
    points      BIGINT  NOT NULL CHECK (points >= 0)
);

CREATE TABLE products (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT    NOT NULL,
    price       BIGINT  NOT NULL CHECK (price > 0),
    stock       BIGINT  NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id              BIGSERIAL PRIMARY KEY,
    order_ref       TEXT    UNIQUE,
    user_id         BIGINT  NOT NULL REFERENCES users (id),
    status          TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    total_amount    BIGINT  NOT NULL CHECK (total_amount > 0),
    paid_payment_id BIGINT,
    stock_released  BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX orders_user ON orders (user_id);

CREATE TABLE order_items (
    order_id    BIGINT  NOT NULL REFERENCES orders (id),
    product_id  BIGINT  NOT NULL REFERENCES products (id),
    quantity    BIGINT  NOT NULL CHECK (quantity > 0),
    unit_price  BIGINT  NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE payments (
    id               BIGSERIAL PRIMARY KEY,
    order_id         BIGINT  NOT NULL REFERENCES orders (id),
    method           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    amount           BIGINT  NOT NULL,
    card_type        TEXT,
    card_no_masked   TEXT,
    idempotency_key  TEXT    UNIQUE,
    transaction_key  TEXT    UNIQUE,
    reason           TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    last_checked_at  BIGINT
);
CREATE INDEX payments_open ON payments (status, id);
CREATE INDEX payments_order ON payments (order_id);

CREATE TABLE payment_history (
    id           BIGSERIAL PRIMARY KEY,
    payment_id   BIGINT  NOT NULL REFERENCES payments (id),
    from_status  TEXT,
    to_status    TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    detail       TEXT,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX payment_history_payment ON payment_history (payment_id, id);

CREATE TABLE outbox_events (
    id               BIGSERIAL PRIMARY KEY,
    aggregate_id     BIGINT  NOT NULL,
    event_type       TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    published_at     BIGINT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    dead             BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT
);
CREATE INDEX outbox_unpublished ON outbox_events (published_at, id);

CREATE TABLE idempotency_keys (
    user_id       BIGINT  NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    order_id      BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT,
    expires_at  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO job_leases (name, owner, expires_at) VALUES ('recovery', NULL, 0);
