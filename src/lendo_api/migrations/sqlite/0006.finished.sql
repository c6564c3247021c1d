-- When each delivery finished (delivered or failed; NULL while pending), so that finished
-- ones and their attempts can be forgotten after LENDO_WEBHOOK_KEEP_DELIVERIES. Those that
-- finished before count from their last attempt. The attempts' index serves that forgetting.
-- depends: 0005.deliveries
ALTER TABLE webhook_deliveries ADD COLUMN finished_at TEXT;
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id);
UPDATE webhook_deliveries SET finished_at = coalesce(
    (SELECT max(a.attempted_at) FROM webhook_attempts AS a
     WHERE a.delivery_id = webhook_deliveries.id),
    due_at)
WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;
