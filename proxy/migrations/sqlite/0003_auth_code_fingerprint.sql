-- The SHA-256 (lower-case hex) of the payment code, kept for good: the idempotency check
-- compares it once the code itself has been wiped, so the same attempt_id sent again with
-- another code is refused even when the last four digits match. A code is single-use and
-- expires within a minute, so its hash reveals nothing usable. NULL for payments stored
-- before this column existed (they fall back to the last four digits).
ALTER TABLE payments ADD COLUMN auth_code_fingerprint TEXT NULL;
