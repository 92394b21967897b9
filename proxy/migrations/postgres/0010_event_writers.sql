-- Who wrote each audit event: the lease owner (a proxy's run id) and the lease epoch the
-- write was made under (docs/postgresql.md §4). With fenced writes an event can only carry
-- the epoch the row had; the chain soak checks it (epochs never go backwards within a
-- payment, and each epoch has one writer), so a write by a proxy that had lost its lease
-- would show. NULL for events written before this migration.
ALTER TABLE payment_events ADD COLUMN lease_owner TEXT NULL;
ALTER TABLE payment_events ADD COLUMN lease_epoch BIGINT NULL;
