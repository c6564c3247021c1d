-- The schema lendo_api.sqlite_store created before migrations were versioned: IF NOT EXISTS,
-- so that a database file of that time is adopted as it is.
CREATE TABLE IF NOT EXISTS applications (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    first_name   TEXT NOT NULL,
    last_name    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
    request_id   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS applications_by_status ON applications (status, seq);
-- The outbox sweep reads only pending rows, oldest publish first.
CREATE INDEX IF NOT EXISTS applications_to_publish
    ON applications (published_at) WHERE status = 'pending';
-- The primary key is what makes concurrent requests with one key create one application.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    body_hash      TEXT NOT NULL,
    application_id TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
