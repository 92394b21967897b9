-- Paycode's first schema on PostgreSQL, mirroring migrations/sqlite/0001_init.sql column for
-- column (the same numbering, so each later change lands in both folders under one number).
-- Times are BIGINT epoch milliseconds (UTC), as on SQLite; booleans are BOOLEAN; the business
-- day is a DATE; states are the JSON API's wire names, checked here so that a value the code
-- cannot read is refused when written; amounts are BIGINT fen.

CREATE TABLE payments (
    id                TEXT    PRIMARY KEY,
    attempt_id        TEXT    NOT NULL UNIQUE,
    terminal_id       TEXT    NOT NULL,
    out_trade_no      TEXT    NOT NULL UNIQUE,
    amount_fen        BIGINT  NOT NULL CHECK (amount_fen > 0),
    -- The full payment code, needed to resend micropay after a crash before it was sent;
    -- the engine sets it to NULL as soon as it is no longer needed.
    auth_code         TEXT    NULL,
    auth_code_last4   TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('submitting', 'waiting_for_customer',
                          'confirming', 'cancelling', 'needs_attention', 'paid', 'failed',
                          'cancelled')),
    version           BIGINT  NOT NULL CHECK (version >= 1),
    maybe_sent        BOOLEAN NOT NULL DEFAULT FALSE,
    micropay_attempts BIGINT  NOT NULL DEFAULT 0 CHECK (micropay_attempts >= 0),
    query_count       BIGINT  NOT NULL DEFAULT 0 CHECK (query_count >= 0),
    reverse_count     BIGINT  NOT NULL DEFAULT 0 CHECK (reverse_count >= 0),
    cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    seen_paid         BOOLEAN NOT NULL DEFAULT FALSE,
    money_returned    BOOLEAN NOT NULL DEFAULT FALSE,
    transaction_id    TEXT    NULL,
    failure_code      TEXT    NULL,
    failure_message   TEXT    NULL,
    attention_reason  TEXT    NULL,
    submitted_at      BIGINT  NULL,
    next_action_at    BIGINT  NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    settled_at        BIGINT  NULL,
    -- The shop's business day (in its UTC offset).
    business_day      DATE    NOT NULL,
    -- The proxy instance driving the payment, and until when. Unused while one proxy owns
    -- the database; kept so that several proxies can lease payments (docs/postgresql.md §4).
    lease_owner       TEXT    NULL,
    lease_until       BIGINT  NULL
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
    amount_fen        BIGINT  NOT NULL CHECK (amount_fen > 0),
    reason            TEXT    NULL,
    state             TEXT    NOT NULL CHECK (state IN ('submitting', 'processing',
                          'succeeded', 'failed')),
    version           BIGINT  NOT NULL CHECK (version >= 1),
    wechat_refund_id  TEXT    NULL,
    failure_code      TEXT    NULL,
    failure_message   TEXT    NULL,
    attempts          BIGINT  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_action_at    BIGINT  NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);

CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at);

CREATE INDEX refunds_unfinished ON refunds (next_action_at)
    WHERE state IN ('submitting', 'processing');

CREATE TABLE terminals (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    -- SHA-256 of the bearer token, lower-case hex; the token itself is never stored.
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL
);

-- The audit trail: one row per payment change, written in the same transaction.
CREATE TABLE payment_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id TEXT   NOT NULL REFERENCES payments (id),
    at         BIGINT NOT NULL,
    from_state TEXT   NULL,
    to_state   TEXT   NOT NULL,
    detail     TEXT   NOT NULL
);

CREATE INDEX payment_events_by_payment ON payment_events (payment_id, id);
