-- Liveness checks in progress, so the frames of one check may reach any instance (issue 14).
-- state: the check as JSON (its challenge, tokens, measures and frontal embeddings); rows go at
-- expires_at (the check's deadline plus the time its result stays readable).
CREATE TABLE liveness_checks (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    state BLOB NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX liveness_checks_expiry ON liveness_checks (expires_at);
