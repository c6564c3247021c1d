-- When the bank's final word was seen, who created each application (the API client), and
-- the event log: one row per change of an application, in commit order. seq is the cursor
-- clients resume from; body is the event as clients receive it, written once.
-- depends: 0002.failed
ALTER TABLE applications ADD COLUMN decided_at TEXT;
ALTER TABLE applications ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL,
    application_id TEXT NOT NULL,
    owner          TEXT NOT NULL,
    type           TEXT NOT NULL,
    body           TEXT NOT NULL
);
CREATE INDEX events_by_application ON events (application_id, seq);
