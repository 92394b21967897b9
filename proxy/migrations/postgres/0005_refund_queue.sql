-- Refunds of one order at least one minute apart (docs/wechat-pay.md §3.4), as in
-- migrations/sqlite/0005_refund_queue.sql: a refund asked for sooner waits in state 'queued'
-- until `next_action_at`; `applied_at` is when an application last ended at WeChat in a way
-- that may have started that minute.
ALTER TABLE refunds ADD COLUMN applied_at BIGINT NULL;

ALTER TABLE refunds DROP CONSTRAINT refunds_state_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_state_check
    CHECK (state IN ('queued', 'submitting', 'processing', 'succeeded', 'failed'));

-- Queued refunds are unfinished too: what the engine resumes on start.
DROP INDEX refunds_unfinished;
CREATE INDEX refunds_unfinished ON refunds (next_action_at)
    WHERE state IN ('queued', 'submitting', 'processing');
