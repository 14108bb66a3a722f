-- AWS-style access keys for the Rekognition-compatible API (issue 20). Signature Version 4 needs
-- the secret itself to derive its signing key, so the secret is kept sealed (AES-256-GCM under the
-- server's key-encryption key, docs/rekognition.md), never in the clear and never hashed.
CREATE TABLE aws_access_keys (
    access_key_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX aws_access_keys_client ON aws_access_keys (client_id);
