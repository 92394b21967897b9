-- The closed loop (docs/wechat-pay.md §7.1 item 6), as in migrations/sqlite/0004_close_state.sql:
-- NULL (no close owed), 'pending' (a reverse is owed; `next_action` is 'close_reverse'),
-- 'closed' or 'needs_attention'.
ALTER TABLE payments ADD COLUMN close_state TEXT NULL
    CHECK (close_state IN ('pending', 'closed', 'needs_attention'));

-- The new action joins the names allowed in `next_action` (0002 named the constraint by
-- PostgreSQL's default rule: table_column_check).
ALTER TABLE payments DROP CONSTRAINT payments_next_action_check;
ALTER TABLE payments ADD CONSTRAINT payments_next_action_check
    CHECK (next_action IN ('micropay', 'query', 'pre_reverse_query', 'reverse', 'final_query',
        'recheck', 'close_reverse'));

-- What the engine resumes on start besides unsettled payments: the few closes still owed.
CREATE INDEX payments_closing_by_next_action ON payments (next_action_at)
    WHERE close_state = 'pending';
