-- Deliveries retried from the log (status `retrying`): the delivery to make again, the alarm event's envelope
-- to make it from, since when and until when it is tried. `sent` and `failed` are final.

ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check CHECK (status IN ('sent', 'retrying', 'failed'));
ALTER TABLE deliveries
    ADD COLUMN IF NOT EXISTS recipients text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS rule text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS first_attempt_at timestamptz,
    ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz,   -- set while retrying: due time, or a claim's lease
    ADD COLUMN IF NOT EXISTS notice jsonb;                  -- the alarm event's CloudEvent, kept while retrying
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at) WHERE status = 'retrying';
