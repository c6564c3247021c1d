-- Webhook deliveries: one row per event and webhook that wants it, written by a trigger in
-- the statement that writes the events, so no event is committed without its deliveries.
-- due_at is when it may next be attempted: at once, after a retry delay, or once a
-- replica's claim on it lapses. One row per attempt in webhook_attempts; both go with
-- their webhook. Safe to run again (yoyo records a migration after committing it).
-- depends: 0004.webhooks
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id text NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_seq  bigint NOT NULL,
    state      text NOT NULL DEFAULT 'pending',
    attempts   integer NOT NULL DEFAULT 0,
    due_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (webhook_id, due_at)
    WHERE state = 'pending';
-- Whether anything is due at all, without walking a dead receiver's backlog.
CREATE INDEX IF NOT EXISTS webhook_deliveries_next ON webhook_deliveries (due_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    webhook_id   text NOT NULL,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL,
    duration_ms  double precision NOT NULL,
    status_code  integer,
    error        text
);
CREATE INDEX IF NOT EXISTS webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
CREATE INDEX IF NOT EXISTS webhook_attempts_by_delivery ON webhook_attempts (delivery_id);
-- Once per statement, over all the events it wrote: a batch of creates is one insert here.
CREATE OR REPLACE FUNCTION event_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_seq, due_at)
    SELECT w.id, e.seq, now() FROM new_events AS e
    JOIN webhooks AS w ON w.owner = e.owner AND e.type = ANY (w.events)
    ORDER BY e.seq, w.id;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS event_deliveries ON events;
CREATE TRIGGER event_deliveries AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_deliveries();
