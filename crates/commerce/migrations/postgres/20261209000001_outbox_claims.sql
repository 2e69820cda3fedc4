-- Outbox claiming for several relays (Postgres): a relay claims a batch for a while
-- (claimed_by = its instance id, claimed_until = expiry in ms) in a short transaction
-- with FOR UPDATE SKIP LOCKED, delivers it, then marks it published. An expired claim
-- (a dead instance's) is taken over. SQLite's single writer keeps the unclaimed path; the
-- columns exist there too so both engines share one schema.
ALTER TABLE outbox_events ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox_events ADD COLUMN claimed_until BIGINT;
-- Per-key order: the unpublished events of an order, found by the claim.
CREATE INDEX outbox_pending_by_aggregate ON outbox_events (aggregate_id, id) WHERE published_at IS NULL;
