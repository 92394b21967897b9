-- Paycode's first schema. Portable on purpose, so that a PostgreSQL migration can mirror it
-- column for column: times are INTEGER epoch milliseconds (UTC), booleans are INTEGER 0/1,
-- states are the JSON API's wire names, amounts are INTEGER fen.

CREATE TABLE payments (
    id                TEXT    PRIMARY KEY,
    attempt_id        TEXT    NOT NULL UNIQUE,
    terminal_id       TEXT    NOT NULL,
    out_trade_no      TEXT    NOT NULL UNIQUE,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    -- The full payment code, needed to resend micropay after a crash before it was sent;
    -- the engine sets it to NULL as soon as it is no longer needed.
    auth_code         TEXT    NULL,
    auth_code_last4   TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    maybe_sent        INTEGER NOT NULL DEFAULT 0,
    micropay_attempts INTEGER NOT NULL DEFAULT 0,
    query_count       INTEGER NOT NULL DEFAULT 0,
    reverse_count     INTEGER NOT NULL DEFAULT 0,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    seen_paid         INTEGER NOT NULL DEFAULT 0,
    money_returned    INTEGER NOT NULL DEFAULT 0,
    transaction_id    TEXT    NULL,
    failure_code      TEXT    NULL,
    failure_message   TEXT    NULL,
    attention_reason  TEXT    NULL,
    submitted_at      INTEGER NULL,
    next_action_at    INTEGER NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    settled_at        INTEGER NULL,
    -- YYYY-MM-DD in the shop's UTC offset.
    business_day      TEXT    NOT NULL,
    lease_owner       TEXT    NULL,
    lease_until       INTEGER NULL
);

-- The day's list, per terminal or for the whole shop.
CREATE INDEX payments_by_day_and_terminal ON payments (business_day, terminal_id, created_at);

-- Resume on start and the engine's timer scan look only at unsettled payments, a handful
-- among many settled ones, so the index holds only those.
CREATE INDEX payments_unsettled_by_next_action ON payments (next_action_at)
    WHERE state NOT IN ('paid', 'failed', 'cancelled');

CREATE TABLE refunds (
    id                TEXT    PRIMARY KEY,
    payment_id        TEXT    NOT NULL REFERENCES payments (id),
    refund_attempt_id TEXT    NOT NULL UNIQUE,
    out_refund_no     TEXT    NOT NULL UNIQUE,
    amount_fen        INTEGER NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NULL,
    state             TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    wechat_refund_id  TEXT    NULL,
    failure_code      TEXT    NULL,
    failure_message   TEXT    NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_action_at    INTEGER NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);

CREATE INDEX refunds_unfinished ON refunds (next_action_at)
    WHERE state IN ('submitting', 'processing');

CREATE TABLE terminals (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the bearer token, lower-case hex; the token itself is never stored.
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NULL
);

-- The audit trail: one row per payment change, written in the same transaction.
CREATE TABLE payment_events (
    id         INTEGER PRIMARY KEY,
    payment_id TEXT    NOT NULL REFERENCES payments (id),
    at         INTEGER NOT NULL,
    from_state TEXT    NULL,
    to_state   TEXT    NOT NULL,
    detail     TEXT    NOT NULL
);

CREATE INDEX payment_events_by_payment ON payment_events (payment_id, id);
