-- When a charge's first attempt was claimed (set just before the PG is called; NULL: never
-- sent). Recovery sends a REQUESTED payment with no attempt past a short grace instead of
-- concluding "not found at the PG".
ALTER TABLE payments ADD COLUMN attempted_at INTEGER;
-- The card of a payment not yet sent, sealed (AES-256-GCM, see src/vault.rs), only until
-- its first attempt is claimed.
CREATE TABLE payment_cards (
    payment_id  INTEGER PRIMARY KEY REFERENCES payments (id),
    sealed      TEXT   NOT NULL,
    created_at  INTEGER NOT NULL
);
