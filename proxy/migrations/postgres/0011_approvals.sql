-- Manager approvals (docs/approvals.md): terminal roles, managers with their PIN hash and
-- lockout, approval tokens (stored hashed, like terminal tokens) and the audit of every
-- approved action. Mirrors migrations/sqlite/0011.

-- cashier (a till, the default), manager (back office of its store), owner (every store).
ALTER TABLE terminals ADD COLUMN role TEXT NOT NULL DEFAULT 'cashier'
    CHECK (role IN ('cashier', 'manager', 'owner'));

CREATE TABLE managers (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    -- The store the manager approves for; NULL: every store (an owner).
    store_id        TEXT    NULL REFERENCES stores (id),
    -- argon2id, PHC string format.
    pin_hash        TEXT    NOT NULL,
    -- Failed PIN checks in a row; reset by a success and when a lockout starts.
    failed_attempts BIGINT  NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    -- Until when PIN checks are refused (the store's clock).
    locked_until    BIGINT  NULL,
    created_at      BIGINT  NOT NULL,
    removed_at      BIGINT  NULL
);

-- A name belongs to one manager at a time; a removed manager's name can be given again.
CREATE UNIQUE INDEX managers_active_name ON managers (name) WHERE removed_at IS NULL;

CREATE TABLE approvals (
    -- SHA-256 of the pca_ token, lower-case hex.
    token_hash  TEXT    PRIMARY KEY,
    terminal_id TEXT    NOT NULL REFERENCES terminals (id),
    manager_id  TEXT    NOT NULL REFERENCES managers (id),
    action      TEXT    NOT NULL
        CHECK (action IN ('refund', 'settle_payment', 'view_all_payments', 'books')),
    reason      TEXT    NULL,
    -- TRUE: one use; FALSE: any number of uses until expires_at (approvals.window).
    once        BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    -- The first use.
    used_at     BIGINT  NULL,
    CHECK (expires_at > created_at)
);

CREATE INDEX approvals_expiry ON approvals (expires_at);

-- One row per approved action, written in the transaction that uses the approval.
CREATE TABLE approved_actions (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT  NOT NULL,
    manager_id   TEXT    NOT NULL REFERENCES managers (id),
    manager_name TEXT    NOT NULL,
    terminal_id  TEXT    NOT NULL REFERENCES terminals (id),
    action       TEXT    NOT NULL,
    -- What was acted on: a payment id, a day.
    target       TEXT    NOT NULL,
    reason       TEXT    NULL
);
