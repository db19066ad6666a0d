"""The alarmer's reminder sweep over 100,000 open alarms, on a throwaway database of the local PostgreSQL.

    .venv/bin/python -m benchmarks.reminders [--alarms 100000] [--due 1000 10000]

Creates `certmon_bench_<random>`, migrates the `alarmer` schema, loads the open alarms with COPY (a few due,
most due within the next week), then measures (a) the due-selection query (one batch of the sweep) with
EXPLAIN (ANALYZE, BUFFERS), and (b) full sweeps of each `--due` count: wall time, reminders per second, and the
database's own time (`pg_stat_database.active_time`, flushed by closing the sweep's connections). The database
is dropped afterwards. Not a test: pytest does not collect it.
"""

import argparse
import asyncio
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.service_layer.reminders import ReminderSweep
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.db import create_pool
from shared.events import AlarmEvent, AlarmKey, CertificateInfo, Finding, KeyInfo, OwnerRef, TargetRef
from shared.outbox import OutboxRelay

ADMIN_URL = os.environ.get("CERTMON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = parse_config({"defaults": {"owner": "ops"}, "owners": {"ops": {}}})
COLUMNS = ["id", "target_key", "fingerprint", "trigger", "level", "state", "opened_at", "updated_at", "last_event",
           "next_reminder_at"]  # fmt: skip
DUE_SELECTION = (
    f"SELECT last_event FROM {SCHEMA}.alarms WHERE state = 'open' AND next_reminder_at <= $1 "
    "ORDER BY next_reminder_at LIMIT $2 FOR UPDATE SKIP LOCKED"
)


def alarm_row(i: int, due: datetime) -> tuple[object, ...]:
    """One open critical alarm as a row of `alarmer.alarms`, its latest event as the alarmer writes it."""
    host = f"h{i}.example.com"
    fingerprint = f"{i:064x}"
    event = AlarmEvent(
        alarm_id=str(uuid.UUID(int=i + 1)),
        key=AlarmKey(target_key=f"{host}:443", fingerprint_sha256=fingerprint, trigger="expiry"),
        transition="raised",
        level="critical",
        triggers=["expiry"],
        findings=[Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
        owners=[OwnerRef(name="ops", email=["ops@example.com"], rule="default")],
        target=TargetRef(host=host, port=443, sni=host),
        certificate=CertificateInfo(
            fingerprint_sha256=fingerprint,
            subject=f"CN={host}",
            issuer="CN=Example CA",
            serial="01",
            not_before=NOW - timedelta(days=85),
            not_after=NOW + timedelta(days=5),
            san=[host],
            key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
            signature_algorithm="ecdsa-with-SHA256",
        ),
        occurred_at=due - timedelta(days=1),
        evaluation_id=f"ev-{i}",
        next_reminder_at=due,
    )
    opened = due - timedelta(days=1)
    return (uuid.UUID(int=i + 1), f"{host}:443", fingerprint, "expiry", "critical", "open", opened, opened,
            json.dumps(event.model_dump(mode="json")), due)  # fmt: skip


async def load(pool: asyncpg.Pool, alarms: int) -> None:
    """`alarms` open alarms, none due yet: their reminders spread over the coming week."""
    step = timedelta(days=7) / alarms
    rows = [alarm_row(i, NOW + timedelta(minutes=1) + step * i) for i in range(alarms)]
    async with pool.acquire() as conn, conn.transaction():
        # COPY has no binary jsonb encoder: stage the events as text, then cast.
        await conn.execute(
            f"CREATE TEMP TABLE staged (LIKE {SCHEMA}.alarms INCLUDING DEFAULTS) ON COMMIT DROP;"
            "ALTER TABLE staged ALTER COLUMN last_event TYPE text"
        )
        await conn.copy_records_to_table("staged", records=rows, columns=COLUMNS)
        selected = ", ".join(f"{c}::jsonb" if c == "last_event" else c for c in COLUMNS)
        await conn.execute(f"INSERT INTO {SCHEMA}.alarms ({', '.join(COLUMNS)}) SELECT {selected} FROM staged")
    await pool.execute(f"ANALYZE {SCHEMA}.alarms")


async def make_due(pool: asyncpg.Pool, count: int) -> None:
    """Reset the schedule, then make the first `count` alarms due a minute ago."""
    async with pool.acquire() as conn:
        await conn.execute(
            f"UPDATE {SCHEMA}.alarms SET next_reminder_at = CASE WHEN id <= $1 THEN $2 "
            "ELSE greatest(next_reminder_at, $3) END",
            uuid.UUID(int=count),
            NOW - timedelta(minutes=1),
            NOW + timedelta(minutes=1),
        )
        await conn.execute(f"DELETE FROM {SCHEMA}.outbox")
        await conn.execute(f"VACUUM ANALYZE {SCHEMA}.alarms")


async def explain(pool: asyncpg.Pool, limit: int) -> tuple[str, float]:
    """The due selection's plan with EXPLAIN (ANALYZE, BUFFERS), rolled back; and its execution time in ms."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {DUE_SELECTION}", NOW, limit)
        finally:
            await tx.rollback()
    plan = "\n".join(row[0] for row in rows)
    execution = next(float(line.split()[2]) for line in plan.splitlines() if line.startswith("Execution Time"))
    return plan, execution


async def active_ms(admin: asyncpg.Connection, name: str) -> float:
    """The milliseconds the database's backends have spent running statements."""
    value = await admin.fetchval("SELECT active_time FROM pg_stat_database WHERE datname = $1", name)
    return float(value or 0.0)


async def sweep(url: str, admin: asyncpg.Connection, name: str, due: int) -> tuple[int, float, float]:
    """One full sweep on a pool of its own: reminders sent, wall seconds, database seconds."""
    pool = await create_pool(url, max_size=2)
    await make_due(pool, due)
    await pool.close()  # flushes the setup's statistics before the baseline is read
    await asyncio.sleep(0.5)
    before = await active_ms(admin, name)
    pool = await create_pool(url, max_size=2)
    store = PostgresAlarmStore(pool, OutboxRelay(pool, SCHEMA, InMemoryBus()))
    started = time.perf_counter()
    sent = await ReminderSweep(store, CONFIG, lambda: NOW).sweep()
    wall = time.perf_counter() - started
    await pool.close()
    await asyncio.sleep(0.5)
    return sent, wall, (await active_ms(admin, name) - before) / 1000


async def main(alarms: int, dues: list[int]) -> None:
    """Build the throwaway database, measure, print the table and the plan, drop the database."""
    name = f"certmon_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        pool = await create_pool(url, max_size=2)
        await PostgresAlarmStore(pool, OutboxRelay(pool, SCHEMA, InMemoryBus())).migrate()
        started = time.perf_counter()
        await load(pool, alarms)
        print(f"loaded {alarms:,} open alarms in {time.perf_counter() - started:.1f} s")
        await make_due(pool, max(dues))
        plan, batch_ms = await explain(pool, 500)
        _, all_ms = await explain(pool, alarms)
        await pool.close()
        results = [(due, *await sweep(url, admin, name, due)) for due in dues]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"\ndue selection over {alarms:,} open alarms, {max(dues):,} due:")
    print(f"  one batch (LIMIT 500): {batch_ms:.2f} ms   every due row (LIMIT {alarms:,}): {all_ms:.2f} ms\n")
    print(plan)
    print("\n| open alarms | due | sent | wall s | reminders/s | database s |\n|---|---|---|---|---|---|")
    for due, sent, wall, db in results:
        print(f"| {alarms:,} | {due:,} | {sent:,} | {wall:.2f} | {sent / wall:,.0f} | {db:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=100_000)
    parser.add_argument("--due", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # one line per reminder
    asyncio.run(main(args.alarms, args.due))
