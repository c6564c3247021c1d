-- The failed status (the bank keeps refusing an application as invalid) and its reason.
-- Safe to run again (yoyo records a migration after committing it).
-- depends: 0001.applications
ALTER TABLE applications DROP CONSTRAINT IF EXISTS applications_status_check;
ALTER TABLE applications ADD CONSTRAINT applications_status_check
    CHECK (status IN ('pending', 'completed', 'rejected', 'failed'));
ALTER TABLE applications ADD COLUMN IF NOT EXISTS failure_reason text;
