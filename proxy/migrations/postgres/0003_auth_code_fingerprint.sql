-- The SHA-256 (lower-case hex) of the payment code, kept for good, as in
-- migrations/sqlite/0003_auth_code_fingerprint.sql: the idempotency check compares it once
-- the code itself has been wiped.
ALTER TABLE payments ADD COLUMN auth_code_fingerprint TEXT NULL;
