-- State every instance must see (issue 14): admin page sessions, per-second API rate buckets and
-- the private_key_jwt assertion ids already used. Times in seconds, except the buckets' (ms).
CREATE TABLE admin_sessions (
    session_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    taken BOOLEAN NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX rate_buckets_updated ON rate_buckets (updated_ms);

CREATE TABLE client_assertions (
    assertion_key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- Expired rows are purged in small batches by expiry (without a scan of the whole table).
CREATE INDEX tokens_expiry ON tokens (expires_at);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX auth_requests_expiry ON auth_requests (expires_at);
