-- The login core: a session keeps the factors it was made of (method, time, device), so a later
-- request can tell what is fresh and what is owed. Clients may require an acr of their own.
ALTER TABLE sessions ADD COLUMN factors TEXT NOT NULL DEFAULT '[]';
CREATE TABLE client_login_policy (
    client_id TEXT PRIMARY KEY REFERENCES clients(client_id) ON DELETE CASCADE,
    acr TEXT NOT NULL
);
