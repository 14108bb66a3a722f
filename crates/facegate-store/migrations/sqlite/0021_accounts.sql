-- Accounts (issue 15): disabled accounts, single-use email links (stored hashed), invitations,
-- what the account page shows of a session, and the client of an audit event.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- Accounts opened on the sign-up page must confirm their address before they reach applications;
-- accounts an operator made (`facegate user add`) need not.
ALTER TABLE users ADD COLUMN confirm_required INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_email ON users (email);
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);
CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    email TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX invites_expiry ON invites (expires_at);
ALTER TABLE sessions ADD COLUMN created_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
CREATE INDEX sessions_user ON sessions (user_id);
ALTER TABLE audit_events ADD COLUMN client_id TEXT;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX grants_user_client ON grants (user_id, client_id);
