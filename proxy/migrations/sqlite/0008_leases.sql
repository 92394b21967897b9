-- Leases with fencing (docs/postgresql.md §4). On SQLite one proxy owns the file, so the
-- lease has one owner; the columns and the fence (`lease_epoch`, +1 on every claim, named by
-- every engine write) are the same as on PostgreSQL, and `lease_until` is the proxy's clock
-- (epoch milliseconds).
ALTER TABLE payments ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
-- The `time_expire` sent with micropay (epoch milliseconds, whole seconds), written with
-- the write-ahead commit: until it has passed, a micropay whose outcome is unknown may
-- still reach WeChat (docs/design.md, "Leases and time_expire").
ALTER TABLE payments ADD COLUMN time_expire INTEGER NULL;

ALTER TABLE refunds ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE refunds ADD COLUMN lease_until INTEGER NULL;
ALTER TABLE refunds ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;

CREATE INDEX payments_claimable ON payments (next_action_at)
    WHERE state NOT IN ('paid', 'failed', 'cancelled') OR close_state = 'pending';
