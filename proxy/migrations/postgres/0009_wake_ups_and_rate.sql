-- Several proxies on one database (docs/postgresql.md §4): wake-ups and the shared micropay
-- limit. SQLite has no counterpart (migrations/sqlite/0009 says why).

-- Wake-ups. Every new payment or refund, and every change of version, is announced on the
-- channel `paycode_change` as `payment ID VERSION` or `refund ID VERSION`; a lease handed
-- back (graceful shutdown: lease_owner becomes NULL, migration 0008) as `released payment ID
-- VERSION` or `released refund ID VERSION`, so that another proxy claims the work at once.
-- pg_notify inside the writing transaction is delivered when that transaction commits (and
-- never if it rolls back), so a listener that re-reads the row sees at least that version.
-- Lease claims and renewals keep the version and are not announced. The payload stays far
-- below NOTIFY's 8000-byte limit (ids are short).
CREATE FUNCTION paycode_announce_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('paycode_change', TG_ARGV[0] || ' ' || NEW.id || ' ' || NEW.version);
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_announce_release AFTER UPDATE ON payments
    FOR EACH ROW WHEN (OLD.lease_owner IS NOT NULL AND NEW.lease_owner IS NULL)
    EXECUTE FUNCTION paycode_announce_change('released payment');
CREATE TRIGGER refunds_announce_release AFTER UPDATE ON refunds
    FOR EACH ROW WHEN (OLD.lease_owner IS NOT NULL AND NEW.lease_owner IS NULL)
    EXECUTE FUNCTION paycode_announce_change('released refund');

CREATE TRIGGER payments_announce_insert AFTER INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION paycode_announce_change('payment');
CREATE TRIGGER payments_announce_update AFTER UPDATE ON payments
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION paycode_announce_change('payment');
CREATE TRIGGER refunds_announce_insert AFTER INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION paycode_announce_change('refund');
CREATE TRIGGER refunds_announce_update AFTER UPDATE ON refunds
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION paycode_announce_change('refund');

-- The micropay limit of each merchant account (its mch_id; a provider's is shared by its
-- sub-merchants), counted for every proxy on this database with the database's clock:
-- `next_turn` is when the next evenly spaced turn starts, `sent` when the micropay calls of
-- the last window left, oldest first. One row per account; the functions below lock it for
-- the length of one statement.
CREATE TABLE micropay_rate (
    mch_id    TEXT          PRIMARY KEY,
    next_turn TIMESTAMPTZ   NOT NULL,
    sent      TIMESTAMPTZ[] NOT NULL DEFAULT '{}'
);

-- Takes the account's next turn, `spacing` after the previous one (or now, if that is
-- later), and returns how many seconds the caller waits for it (0 when it starts now).
CREATE FUNCTION paycode_micropay_turn(account TEXT, spacing INTERVAL)
RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    turn TIMESTAMPTZ;
BEGIN
    INSERT INTO micropay_rate AS rate (mch_id, next_turn)
    VALUES (account, clock_timestamp() + spacing)
    ON CONFLICT (mch_id) DO UPDATE
        SET next_turn = GREATEST(rate.next_turn, clock_timestamp()) + spacing
    RETURNING rate.next_turn - spacing INTO turn;
    RETURN GREATEST(EXTRACT(EPOCH FROM turn - clock_timestamp()), 0);
END
$$;

-- Admits one micropay call of the account if fewer than `most` left within the last
-- `window_length`, recording it, and returns 0; otherwise records nothing and returns how
-- many seconds until the oldest of them leaves the window (then ask again). A call that took
-- no turn from paycode_micropay_turn (one sent straight away by the proxy that stored it)
-- passes its `spacing`, and, when admitted, pushes the next turn back by that much as if it
-- had taken one; other calls pass a zero interval.
CREATE FUNCTION paycode_micropay_admit(
    account TEXT, most INTEGER, window_length INTERVAL, spacing INTERVAL
)
RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
    recent TIMESTAMPTZ[];
    now_   TIMESTAMPTZ;
BEGIN
    INSERT INTO micropay_rate (mch_id, next_turn) VALUES (account, clock_timestamp())
    ON CONFLICT (mch_id) DO NOTHING;
    SELECT sent INTO recent FROM micropay_rate WHERE mch_id = account FOR UPDATE;
    now_ := clock_timestamp();
    recent := ARRAY(
        SELECT at FROM unnest(recent) AS at WHERE at > now_ - window_length ORDER BY at
    );
    IF cardinality(recent) < most THEN
        UPDATE micropay_rate
        SET sent = recent || now_,
            next_turn = CASE WHEN spacing > INTERVAL '0' THEN GREATEST(next_turn, now_) + spacing
                             ELSE next_turn END
        WHERE mch_id = account;
        RETURN 0;
    END IF;
    RETURN GREATEST(EXTRACT(EPOCH FROM recent[1] + window_length - now_), 0.001);
END
$$;
