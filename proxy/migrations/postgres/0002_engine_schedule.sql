-- What the payments engine needs to resume exactly where it stopped (as
-- migrations/sqlite/0002_engine_schedule.sql): the action it owes each payment, a micropay
-- decline waiting to be confirmed by a query, and its retry counters.

-- The engine's name for the next WeChat call; NULL once nothing more is owed.
ALTER TABLE payments ADD COLUMN next_action TEXT NULL
    CHECK (next_action IN ('micropay', 'query', 'pre_reverse_query', 'reverse', 'final_query',
        'recheck'));
-- A micropay result_code=FAIL (err_code and cashier message) not yet confirmed by a query.
ALTER TABLE payments ADD COLUMN pending_failure_code TEXT NULL;
ALTER TABLE payments ADD COLUMN pending_failure_message TEXT NULL;
-- Consecutive failed reverse or final-query attempts (for backoff and needs_attention).
ALTER TABLE payments ADD COLUMN retry_attempts BIGINT NOT NULL DEFAULT 0
    CHECK (retry_attempts >= 0);
-- Consecutive micropay attempts that never reached WeChat.
ALTER TABLE payments ADD COLUMN not_sent_attempts BIGINT NOT NULL DEFAULT 0
    CHECK (not_sent_attempts >= 0);
