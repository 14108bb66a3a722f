-- Issue 13: clients that must push their authorization requests (RFC 9126 require_pushed_authorization_requests).
ALTER TABLE clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0
;
-- Issue 13: clients whose access tokens are JWTs (RFC 9068).
ALTER TABLE clients ADD COLUMN jwt_access_tokens INTEGER NOT NULL DEFAULT 0
;
-- Issue 13: OpenID Connect Back-Channel Logout 1.0.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT
;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0
