-- Login throttles in the database (issue 14): a lockout holds on every instance. Times in ms.
CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    first_at BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);
