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

-- shared.db.PROCESSED_EVENTS_SQL
CREATE TABLE IF NOT EXISTS processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- shared.outbox.OUTBOX_SQL
CREATE TABLE IF NOT EXISTS outbox (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    event jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
