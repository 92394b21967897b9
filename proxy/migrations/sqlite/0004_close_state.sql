-- The closed loop (docs/wechat-pay.md §7.1 item 6): a payment that failed while WeChat kept its order open
-- (PAYERROR, NOTPAY) is settled for the cashier, but its order is still closed by reverse in
-- the background. `close_state` tracks that: NULL (no close owed), 'pending' (the reverse is
-- owed; `next_action` is 'close_reverse'), 'closed', or 'needs_attention' (it failed for good).
ALTER TABLE payments ADD COLUMN close_state TEXT NULL;

-- What the engine resumes on start besides unsettled payments: the few closes still owed.
CREATE INDEX payments_closing_by_next_action ON payments (next_action_at)
    WHERE close_state = 'pending';
