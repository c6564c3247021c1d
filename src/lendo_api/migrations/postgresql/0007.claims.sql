-- A delivery's claims, apart from its attempts: a claim that lapses (its process died
-- mid-attempt) no longer uses up a retry of the schedule. attempts counts recorded attempts;
-- claims identifies the newest claim, whose outcome alone moves the delivery on.
-- One transaction, recorded by yoyo as it commits.
-- depends: 0006.finished
ALTER TABLE webhook_deliveries ADD COLUMN claims integer NOT NULL DEFAULT 0;
UPDATE webhook_deliveries AS d SET claims = d.attempts, attempts = coalesce(
    (SELECT max(a.attempt) FROM webhook_attempts AS a WHERE a.delivery_id = d.id), 0);
