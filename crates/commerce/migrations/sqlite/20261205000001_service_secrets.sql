-- Secrets the service makes for itself at first start and every instance on this database
-- shares: the key of the idempotency fingerprints when `idempotency.fingerprint_key` is not
-- configured.
CREATE TABLE service_secrets (
    name        TEXT    PRIMARY KEY,
    value       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
