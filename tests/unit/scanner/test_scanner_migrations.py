"""The scanner's first migration carries the shared idempotency and outbox tables unchanged."""

from shared.db import PROCESSED_EVENTS_SQL, load_migrations
from shared.outbox import OUTBOX_SQL


def _normalised(sql: str) -> str:
    return " ".join(sql.split())


def test_first_migration_contains_the_shared_tables_verbatim() -> None:
    """`processed_events` and `outbox` are exactly what `shared.db.claim_event` and the relay expect."""
    migrations = load_migrations("services.scanner.adapters.migrations")
    assert [name for name, _ in migrations] == ["001_init.sql"]
    sql = _normalised(migrations[0][1])
    assert _normalised(PROCESSED_EVENTS_SQL) in sql
    assert _normalised(OUTBOX_SQL) in sql
