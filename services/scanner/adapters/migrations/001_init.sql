-- The scanner's schema: configured targets and their schedule (shared.db.migrate adds the idempotency and outbox tables).

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
