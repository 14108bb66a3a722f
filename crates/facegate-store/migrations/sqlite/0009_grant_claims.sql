-- Issue 13: the claims request parameter (OIDC Core 5.5) travels with the grant, as JSON.
ALTER TABLE grants ADD COLUMN claims TEXT
