-- Leases with fencing (docs/postgresql.md §4), as in migrations/sqlite/0008_leases.sql.
-- Every unsettled payment and unfinished refund is driven by one proxy at a time: the one
-- named in `lease_owner` (a run id) until `lease_until` (epoch milliseconds of THIS
-- database's clock, never an instance's). `lease_epoch` grows by one on every claim; every
-- engine write names the epoch it holds, so a write from an instance that lost the lease
-- matches no row and is refused.
ALTER TABLE payments ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
-- The `time_expire` sent with micropay (epoch milliseconds, whole seconds), written with
-- the write-ahead commit: until it has passed, a micropay whose outcome is unknown may
-- still reach WeChat (docs/design.md, "Leases and time_expire").
ALTER TABLE payments ADD COLUMN time_expire BIGINT NULL;

ALTER TABLE refunds ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE refunds ADD COLUMN lease_until BIGINT NULL;
ALTER TABLE refunds ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;

-- Claims look for due work that nobody holds: settled payments owing a close are work too.
CREATE INDEX payments_claimable ON payments (next_action_at)
    WHERE state NOT IN ('paid', 'failed', 'cancelled') OR close_state = 'pending';
