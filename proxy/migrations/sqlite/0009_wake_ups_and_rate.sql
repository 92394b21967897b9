-- Intentionally empty: PostgreSQL's migration 0009 adds the wake-ups (NOTIFY on every payment
-- and refund change) and the micropay limit shared by several proxies on one database. A
-- SQLite database has one proxy, which hears its own changes and counts its own micropay
-- calls in memory (docs/postgresql.md §4), so it needs neither. The file keeps the two
-- back ends' migrations numbered alike.
SELECT 1;
