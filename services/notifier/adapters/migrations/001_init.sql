-- The notifier's schema: the delivery log (one row per idempotency key), processed alarm events, the outbox.

CREATE TABLE IF NOT EXISTS deliveries (
    idempotency_key text PRIMARY KEY,          -- alarm event id | channel | recipient
    alarm_id text NOT NULL,
    alarm_event_id text NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    status text NOT NULL CHECK (status IN ('sent', 'failed')),
    attempts integer NOT NULL CHECK (attempts >= 0),
    last_error text,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_alarm ON deliveries (alarm_id, updated_at);
