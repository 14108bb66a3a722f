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
    dim INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    bbox TEXT NOT NULL,
    quality TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_faces_collection ON api_faces(collection_id, id);
CREATE TABLE api_imports (
    collection_id TEXT NOT NULL REFERENCES api_collections(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL,
    external_id TEXT NOT NULL,
    faces INTEGER NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (collection_id, sha256)
);
CREATE TABLE api_usage (
    client_id TEXT NOT NULL,
    month TEXT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (client_id, month)
)
