-- Subscriptions and dunning (issue 17, part 2). Times in milliseconds since the Unix epoch,
-- money in integer minor units. The card is kept masked (first 6 + last 4, shown) and sealed
-- with the service's key (`card_sealed`, see src/subscriptions/vault.rs), never in the clear.

CREATE TABLE plans (
    id          BIGINT PRIMARY KEY,
    name        TEXT    NOT NULL,
    price       BIGINT NOT NULL CHECK (price > 0),
    period_days BIGINT NOT NULL CHECK (period_days > 0)
);
INSERT INTO plans (id, name, price, period_days) VALUES
    (1, 'Monthly', 9900, 30),
    (2, 'Yearly', 99000, 365);

CREATE TABLE subscriptions (
    id                   BIGSERIAL PRIMARY KEY,
    user_id              BIGINT NOT NULL REFERENCES users (id),
    plan_id              BIGINT NOT NULL REFERENCES plans (id),
    state                TEXT    NOT NULL,
    card_type            TEXT    NOT NULL,
    card_no_masked       TEXT    NOT NULL,
    card_sealed          TEXT    NOT NULL,
    period               BIGINT NOT NULL,
    billing_at           BIGINT NOT NULL,
    next_attempt_at      BIGINT,
    failures             BIGINT NOT NULL DEFAULT 0,
    first_failure_at     BIGINT,
    in_flight_attempt_id BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);
CREATE INDEX subscriptions_due ON subscriptions (next_attempt_at);

-- Every billing attempt (the subscriptions' payment history: `payment_history` is per order
-- payment). One row per (subscription, period, attempt), whose idempotency key it carries.
CREATE TABLE subscription_attempts (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id),
    period           BIGINT NOT NULL,
    attempt          BIGINT NOT NULL,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    order_ref        TEXT    NOT NULL,
    amount           BIGINT NOT NULL CHECK (amount > 0),
    card_no_masked   TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    outcome          TEXT,
    transaction_key  TEXT,
    reason           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (subscription_id, period, attempt)
);
CREATE INDEX subscription_attempts_open ON subscription_attempts (status);
