"""The outbox table, kept apart so `shared.db` and `shared.outbox` can both use it without importing each other."""

OUTBOX_SQL = """
CREATE TABLE IF NOT EXISTS outbox (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    event jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
"""

#: `shared.retention` deletes published rows by age; the partial index leaves the rows waiting to be published out.
OUTBOX_RETENTION_SQL = """
CREATE INDEX IF NOT EXISTS outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
"""
