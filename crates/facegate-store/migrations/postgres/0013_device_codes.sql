CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    interval_secs BIGINT NOT NULL,
    last_poll_at BIGINT,
    status TEXT NOT NULL,
    grant_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_codes_expiry ON device_codes(expires_at);
