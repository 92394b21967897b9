-- WeChat wants partial refunds of one order at least one minute apart (docs/wechat-pay.md §3.4). A refund
-- asked for sooner is stored in state 'queued' with `next_action_at` = when it may be sent;
-- `applied_at` is when an application for a refund last ended at WeChat in a way that may have
-- started that minute (accepted, or outcome unknown), so the next refund can wait from it.
ALTER TABLE refunds ADD COLUMN applied_at INTEGER NULL;

-- Queued refunds are unfinished too: what the engine resumes on start.
DROP INDEX refunds_unfinished;
CREATE INDEX refunds_unfinished ON refunds (next_action_at)
    WHERE state IN ('queued', 'submitting', 'processing');
