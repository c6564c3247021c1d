-- When each delivery finished (delivered or failed; NULL while pending), so that finished
-- ones and their attempts can be forgotten after LENDO_WEBHOOK_KEEP_DELIVERIES. Those that
-- finished before count from their last attempt. Safe to run again (yoyo records a
-- migration after committing it).
-- depends: 0005.deliveries
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS finished_at timestamptz;
UPDATE webhook_deliveries AS d SET finished_at = coalesce(
    (SELECT max(a.attempted_at) FROM webhook_attempts AS a WHERE a.delivery_id = d.id),
    d.due_at)
WHERE d.state <> 'pending' AND d.finished_at IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;
