-- The owner's books (docs/books.md §5): one row per business day and merchant account with
-- the day's reconciliation report, the mismatches it found with their own statuses, and the
-- claim that lets one proxy at a time run a day's reconciliation.

-- One row per (business day, account): replaced on a re-run, never duplicated. `report` is
-- the DayReport as JSON (its `carried_to_next_day` is the carry-over the next day's run
-- takes); NULL while the bill is not ready or the run failed (`detail` says why).
CREATE TABLE books_days (
    business_day TEXT    NOT NULL,
    mch_id       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    report       TEXT,
    detail       TEXT,
    run_at       INTEGER NOT NULL,
    run_by       TEXT    NOT NULL,
    PRIMARY KEY (business_day, mch_id)
);

-- Each mismatch of a day's run, by a stable id (the same difference on a re-run has the same
-- id), with its status. A re-run updates what it finds and keeps a status a person or an
-- earlier run set; a mismatch a re-run no longer finds stays, with `in_latest_run` = 0.
CREATE TABLE books_mismatches (
    id            TEXT    PRIMARY KEY,
    business_day  TEXT    NOT NULL,
    mch_id        TEXT    NOT NULL,
    mismatch      TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    in_latest_run INTEGER NOT NULL,
    note          TEXT,
    settled_by    TEXT,
    settled_at    INTEGER,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);

CREATE INDEX books_mismatches_day ON books_mismatches (business_day, mch_id);
CREATE INDEX books_mismatches_open ON books_mismatches (mch_id) WHERE status = 'open';

-- Who runs a day's reconciliation of an account now: a claim until `claimed_until` (the store's
-- clock), taken only when free or lapsed, so several proxies run each day once.
CREATE TABLE books_runs (
    business_day TEXT    NOT NULL,
    mch_id       TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    claimed_until INTEGER NOT NULL,
    PRIMARY KEY (business_day, mch_id)
);
