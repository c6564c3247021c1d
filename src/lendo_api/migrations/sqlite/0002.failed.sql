-- The failed status (the bank keeps refusing an application as invalid) and its reason.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt, rows kept as they
-- are, and its indexes made again.
-- depends: 0001.applications
CREATE TABLE applications_with_failed (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    status         TEXT NOT NULL
                   CHECK (status IN ('pending', 'completed', 'rejected', 'failed')),
    request_id     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    published_at   TEXT,
    failure_reason TEXT
);
INSERT INTO applications_with_failed
    (seq, id, first_name, last_name, status, request_id, created_at, updated_at, published_at)
    SELECT seq, id, first_name, last_name, status, request_id, created_at, updated_at,
           published_at
    FROM applications;
DROP TABLE applications;
ALTER TABLE applications_with_failed RENAME TO applications;
CREATE INDEX applications_by_status ON applications (status, seq);
CREATE INDEX applications_to_publish ON applications (published_at) WHERE status = 'pending';
