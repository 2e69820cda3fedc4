-- The recovery lease gets a generation (fencing token): every acquisition bumps it, and
-- renewal and release match on it, so a round that lost its lease can neither extend nor
-- release the next holder's.
ALTER TABLE job_leases ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
-- One row per recovery round that took the lease: who ran it, under which generation, from
-- when to when (NULL while it runs), how it ended, and how long its lease was last renewed
-- for (a round cut short by a crash did nothing after `lease_until`).
CREATE TABLE recovery_rounds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT    NOT NULL,
    generation   INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    outcome      TEXT,
    lease_until  INTEGER NOT NULL
);
CREATE INDEX recovery_rounds_started ON recovery_rounds (started_at);
