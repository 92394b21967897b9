-- Stores and the merchant accounts they collect into (docs/design.md, "Stores and merchant
-- accounts"). Accounts and their secrets live in the configuration; a store names its account
-- and, under a service provider, its sub-merchant. Portable column types, as in 0001.

CREATE TABLE stores (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    -- The configuration's account name: 'default' is [wechat], others [accounts.NAME].
    account     TEXT    NOT NULL,
    -- Service-provider mode only: the sub-merchant this store collects into.
    sub_mch_id  TEXT    NULL,
    sub_appid   TEXT    NULL,
    address     TEXT    NULL,
    created_at  INTEGER NOT NULL,
    -- A disabled store takes no new payments; its payments in progress finish and its paid
    -- payments can still be refunded.
    disabled_at INTEGER NULL
);

-- Every wave-1 deployment had exactly one merchant, [wechat]: its terminals and payments
-- become the default store's. Its sub-merchant fields (if [wechat] set them) and the
-- payments' account fields are filled in by the proxy at start, from the configuration.
INSERT INTO stores (id, name, account, created_at)
VALUES ('default', 'default', 'default', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

ALTER TABLE terminals ADD COLUMN store_id TEXT NOT NULL DEFAULT 'default';

-- What each payment and refund was made with: its store and the account fields sent with
-- every call about it (appid, mch_id and, under a provider, sub_appid and sub_mch_id). NULL
-- account fields only on rows written before this migration, until the proxy's first start.
ALTER TABLE payments ADD COLUMN store_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE payments ADD COLUMN appid TEXT NULL;
ALTER TABLE payments ADD COLUMN mch_id TEXT NULL;
ALTER TABLE payments ADD COLUMN sub_appid TEXT NULL;
ALTER TABLE payments ADD COLUMN sub_mch_id TEXT NULL;

ALTER TABLE refunds ADD COLUMN store_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE refunds ADD COLUMN appid TEXT NULL;
ALTER TABLE refunds ADD COLUMN mch_id TEXT NULL;
ALTER TABLE refunds ADD COLUMN sub_appid TEXT NULL;
ALTER TABLE refunds ADD COLUMN sub_mch_id TEXT NULL;

-- The day list is per store (and optionally per terminal).
CREATE INDEX payments_by_store_and_day ON payments (store_id, business_day, terminal_id, created_at);
