-- Each statement that writes decisions' events tells the API replicas at its commit, so
-- their event feeds read at once instead of at their next look; the look stays, for a
-- notice missed, and for creates, whose notices would cost a read of the log per batch.
-- One transaction, recorded by yoyo as it commits.
-- depends: 0007.claims
CREATE OR REPLACE FUNCTION events_committed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_events WHERE type <> 'application.created') THEN
        -- Notices of one transaction with the same payload are delivered once.
        PERFORM pg_notify('lendo_events', '');
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS events_committed ON events;
CREATE TRIGGER events_committed AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_committed();
