CREATE TABLE face_templates (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pack TEXT NOT NULL,
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
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
CREATE INDEX audit_events_user ON audit_events(user_id, at)
