-- A delivery's claims, apart from its attempts: a claim that lapses (its process died
-- mid-attempt) no longer uses up a retry of the schedule. attempts counts recorded attempts;
-- claims identifies the newest claim, whose outcome alone moves the delivery on.
-- depends: 0006.finished
ALTER TABLE webhook_deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
UPDATE webhook_deliveries SET claims = attempts, attempts = coalesce(
    (SELECT max(a.attempt) FROM webhook_attempts AS a WHERE a.delivery_id = webhook_deliveries.id),
    0);
