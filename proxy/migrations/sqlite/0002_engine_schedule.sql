-- What the payments engine needs to resume exactly where it stopped: the action it owes
-- each payment (with `next_action_at`, added in 0001), a micropay decline waiting to be
-- confirmed by a query, and its retry counters. Portable column types, as in 0001.

-- The engine's name for the next WeChat call: micropay, query, pre_reverse_query, reverse,
-- final_query or recheck; NULL once nothing more is owed.
ALTER TABLE payments ADD COLUMN next_action TEXT NULL;
-- A micropay result_code=FAIL (err_code and cashier message) not yet confirmed by a query.
ALTER TABLE payments ADD COLUMN pending_failure_code TEXT NULL;
ALTER TABLE payments ADD COLUMN pending_failure_message TEXT NULL;
-- Consecutive failed reverse or final-query attempts (for backoff and needs_attention).
ALTER TABLE payments ADD COLUMN retry_attempts INTEGER NOT NULL DEFAULT 0;
-- Consecutive micropay attempts that never reached WeChat.
ALTER TABLE payments ADD COLUMN not_sent_attempts INTEGER NOT NULL DEFAULT 0;
