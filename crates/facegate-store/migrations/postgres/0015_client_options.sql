-- Issue 13: clients that must push their authorization requests (RFC 9126), whose access tokens are
-- JWTs (RFC 9068), and their Back-Channel Logout 1.0 endpoint.
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN jwt_access_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;
