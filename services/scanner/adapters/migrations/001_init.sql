-- The scanner's schema: configured targets and their schedule, plus the idempotency and outbox tables
-- (copied verbatim from shared.db.PROCESSED_EVENTS_SQL and shared.outbox.OUTBOX_SQL).

CREATE TABLE IF NOT EXISTS targets (
    key text PRIMARY KEY,
    target jsonb NOT NULL,
    next_due timestamptz NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    last_observed_at timestamptz,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS targets_due ON targets (next_due) WHERE enabled;

CREATE TABLE IF NOT EXISTS processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE IF NOT EXISTS outbox (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    event jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
