-- Columns as lendo_api.postgres_schema declares them. IF NOT EXISTS: yoyo records a migration
-- after committing it, so a process killed in between runs it again.
CREATE TABLE IF NOT EXISTS applications (
    -- An identity, not a per-process counter: a page cursor read on one replica is valid
    -- on every other.
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            uuid NOT NULL UNIQUE,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'completed', 'rejected')),
    request_id    text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    published_at  timestamptz,
    -- Until when one replica's outbox sweep holds the row; the others skip it meanwhile.
    claimed_until timestamptz
);
CREATE INDEX IF NOT EXISTS applications_by_status ON applications (status, seq);
-- The outbox sweep reads only pending rows, never-published first, then oldest publish.
CREATE INDEX IF NOT EXISTS applications_to_publish
    ON applications (published_at NULLS FIRST, seq) WHERE status = 'pending';
-- The primary key is what makes concurrent requests with one key create one application.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope          text NOT NULL,
    key            text NOT NULL,
    body_hash      text NOT NULL,
    application_id uuid NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);
