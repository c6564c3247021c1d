-- When the bank's final word was seen, who created each application (the API client), and
-- the event log: one row per change of an application. seq is the cursor clients resume
-- from; every insert holds the applications' insert-order lock to its commit, so seq values
-- become visible in order. body is the event as clients receive it, written once.
-- Safe to run again (yoyo records a migration after committing it).
-- depends: 0002.failed
ALTER TABLE applications ADD COLUMN IF NOT EXISTS decided_at timestamptz;
ALTER TABLE applications ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS events (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             text NOT NULL,
    application_id uuid NOT NULL,
    owner          text NOT NULL,
    type           text NOT NULL,
    body           text NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_application ON events (application_id, seq);
