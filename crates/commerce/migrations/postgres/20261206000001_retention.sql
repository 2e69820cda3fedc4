-- The retention job deletes idempotency keys by age (published outbox events by
-- `published_at`, which `outbox_unpublished` already indexes).
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
