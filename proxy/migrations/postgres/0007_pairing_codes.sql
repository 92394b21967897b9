-- One-time pairing codes (`paycode-proxy terminal add|pair`): a tablet exchanges one for
-- the terminal's token (`POST /api/v1/pairing`). Like tokens, only the SHA-256 of a code is
-- stored. A code is deleted when it is used, when a newer code is issued for its terminal,
-- and (lazily) once it has expired. Mirrors migrations/sqlite/0007.
CREATE TABLE pairing_codes (
    code_hash   TEXT   PRIMARY KEY,
    terminal_id TEXT   NOT NULL REFERENCES terminals (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    CHECK (expires_at > created_at)
);

CREATE INDEX pairing_codes_terminal ON pairing_codes (terminal_id);
