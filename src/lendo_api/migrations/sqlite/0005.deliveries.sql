-- Webhook deliveries: one row per event and webhook that wants it, written by a trigger in
-- the transaction that writes the event, so no event is committed without its deliveries.
-- due_at is when it may next be attempted: at once, after a retry delay, or once a
-- dispatcher's claim on it lapses. One row per attempt in webhook_attempts.
-- depends: 0004.webhooks
CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_seq  INTEGER NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, due_at)
    WHERE state = 'pending';
-- Whether anything is due at all, without walking a dead receiver's backlog.
CREATE INDEX webhook_deliveries_next ON webhook_deliveries (due_at) WHERE state = 'pending';
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL,
    webhook_id   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    duration_ms  REAL NOT NULL,
    status_code  INTEGER,
    error        TEXT
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
-- The event's own timestamp (the moment of its change) is the first due time: it has the
-- stored timestamps' width, which SQLite's strftime does not.
CREATE TRIGGER event_deliveries AFTER INSERT ON events BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_seq, due_at)
    SELECT w.id, NEW.seq, NEW.body ->> '$.timestamp' FROM webhooks AS w
    WHERE w.owner = NEW.owner AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = NEW.type)
    ORDER BY w.id;
END;
