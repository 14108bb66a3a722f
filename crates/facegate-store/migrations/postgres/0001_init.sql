-- facegate on PostgreSQL: the schema of the SQLite migrations 0001-0009 in one step (a PostgreSQL
-- database starts at this point). Types are the portable ones the store reads through sqlx's Any
-- driver: TEXT ids and JSON, BIGINT for every integer (epoch seconds, counters, flags), BYTEA for
-- embeddings and keys. Later migrations carry the same number in both folders.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    email_verified BIGINT NOT NULL DEFAULT 0,
    name TEXT,
    password_hash TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    scope TEXT NOT NULL,
    jwks TEXT,
    skip_consent BIGINT NOT NULL DEFAULT 0,
    registration_token_hash TEXT,
    created_at BIGINT NOT NULL,
    id_token_alg TEXT,
    subject_type TEXT,
    resource_server BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    pkcs8 BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT,
    expires_at BIGINT NOT NULL,
    factors TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE auth_requests (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT,
    amr TEXT NOT NULL,
    acr TEXT,
    nonce TEXT,
    sid TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    claims TEXT
);
CREATE INDEX grants_sid ON grants(sid);
CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX tokens_grant ON tokens(grant_id);
CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE face_templates (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pack TEXT NOT NULL,
    dim BIGINT NOT NULL,
    embedding BYTEA NOT NULL,
    quality TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX face_templates_user ON face_templates(user_id);
CREATE INDEX face_templates_pack ON face_templates(pack);
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    ip TEXT,
    result TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_events_user ON audit_events(user_id, at);
CREATE TABLE api_collections (
    id TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE api_faces (
    id TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES api_collections(id) ON DELETE CASCADE,
    external_id TEXT,
    pack TEXT NOT NULL,
    dim BIGINT NOT NULL,
    embedding BYTEA NOT NULL,
    bbox TEXT NOT NULL,
    quality TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_faces_collection ON api_faces(collection_id, id);
CREATE TABLE api_imports (
    collection_id TEXT NOT NULL REFERENCES api_collections(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    external_id TEXT NOT NULL,
    faces BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (collection_id, sha256)
);
CREATE TABLE api_usage (
    client_id TEXT NOT NULL,
    month TEXT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (client_id, month)
);
CREATE TABLE client_login_policy (
    client_id TEXT PRIMARY KEY REFERENCES clients(client_id) ON DELETE CASCADE,
    acr TEXT NOT NULL
);
