-- Issue 13: resource servers may introspect other clients' tokens (set by the CLI or admin API only).
ALTER TABLE clients ADD COLUMN resource_server INTEGER NOT NULL DEFAULT 0;
-- Logout revokes the refresh tokens of the grants made in the session.
CREATE INDEX grants_sid ON grants(sid)
