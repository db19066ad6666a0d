"""The dashboard's pages over a large history, on a throwaway database of the local PostgreSQL.

    .venv/bin/python -m benchmarks.dashboard [--targets 100000] [--days 30] [--alarms 10000] [--requests 40]

Creates `certmon_bench_<random>` and migrates the reporter's schema. The older days of history (each target
evaluated once a day) are loaded with COPY into `evaluations`; the newest day goes through `History.
record_evaluation` and the alarms through `History.record_alarm`, the code the reporter's handlers run, so
`latest` and `alarms` hold what the reporter itself writes. Then a fresh process (so its peak memory is the
reporter's, not the seeding's) serves the app in process and times `--requests` requests of each page: the
overview, the certificates list (first page, a deep page, by owner, by text, by days left), a certificate,
the timeline and the alarm history. It prints p50/p95/max per page and the process's peak RSS; the database is
dropped afterwards. Not a test: pytest does not collect it.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.reporter.adapters.history import History
from services.reporter.adapters.http import create_app
from shared.action_links import ActionLinkSigner
from shared.db import create_pool
from shared.events import (
    Acknowledgement,
    AlarmEvent,
    AlarmKey,
    AlarmSummary,
    CertificateInfo,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    NotificationResult,
    OwnerRef,
    SecurityCap,
    SecurityInfo,
    TargetRef,
)
from shared.settings import Settings

ADMIN_URL = os.environ.get("CERTMON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
LEVELS = ("ok",) * 6 + ("info", "warning", "warning", "critical")
GRADES = ("A+", "A", "A", "A", "A-", "B", "C", "F")
COLUMNS = ["event_id", "target_key", "fingerprint", "evaluated_at", "level", "grade", "days_remaining", "evaluation"]


def evaluation(n: int, day: int) -> Evaluation:
    """Target `n` as evaluated `day` days before NOW: a stable certificate, level and grade per target."""
    rng = random.Random(n)
    host = f"h{n:06d}.example.com"
    not_after = NOW + timedelta(days=rng.uniform(-10, 400))
    level = rng.choice(LEVELS)
    grade = rng.choice(GRADES)
    at = NOW - timedelta(days=day, minutes=rng.uniform(0, 600))
    days = (not_after - at).total_seconds() / 86400
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host, server=f"server-{n % 500}"),
        target_key=f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=True,
        certificate=CertificateInfo(
            fingerprint_sha256=f"{n:064x}",
            subject=f"CN={host},O=Example {n % 97}",
            issuer=f"CN=Issuing CA {n % 20},O=Example Trust",
            serial=f"{n:x}",
            not_before=not_after - timedelta(days=90),
            not_after=not_after,
            san=[host, f"www.{host}"],
            key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
            signature_algorithm="ecdsa-with-SHA256",
        ),
        expiry=ExpiryInfo(days_remaining=days, status="valid", renewal_window="plan"),
        security=SecurityInfo(
            grade=grade, grade_ignoring_trust=grade, score=85, caps=[SecurityCap(grade="A-", reason="no TLS 1.3")]
        ),
        findings=[Finding(code="tls.no_tls13", severity="notice", message="TLS 1.3 is not offered")],
        alarm=AlarmSummary(level=level, triggers=["expiry"] if level != "ok" else []),
        owner=f"team-{n % 200}",
    )


def alarm_events(n: int) -> list[tuple[str, AlarmEvent]]:
    """Target `n`'s expiry alarm: raised, for some acknowledged, for others resolved."""
    item = evaluation(n, 0)
    assert item.certificate is not None
    raised = AlarmEvent(
        alarm_id=f"alarm-{n}",
        key=AlarmKey(
            target_key=item.target_key, fingerprint_sha256=item.certificate.fingerprint_sha256, trigger="expiry"
        ),
        transition="raised",
        level="warning",
        owners=[OwnerRef(name=f"team-{n % 200}", email=["ops@example.com"], rule="default")],
        target=item.target,
        certificate=item.certificate,
        occurred_at=NOW - timedelta(days=n % 30, hours=2),
    )
    events = [(f"a{n}-1", raised)]
    if n % 3 == 1:
        ack = Acknowledgement(by="jane@example.com", at=raised.occurred_at + timedelta(hours=1), comment="renewing")
        events.append(
            (
                f"a{n}-2",
                raised.model_copy(
                    update={
                        "transition": "acknowledged",
                        "state": "acknowledged",
                        "acknowledgement": ack,
                        "occurred_at": ack.at,
                    }
                ),
            )
        )
    if n % 3 == 2:
        events.append(
            (
                f"a{n}-2",
                raised.model_copy(
                    update={
                        "transition": "resolved",
                        "state": "resolved",
                        "level": "ok",
                        "occurred_at": raised.occurred_at + timedelta(hours=5),
                    }
                ),
            )
        )
    return events


def _delivery(event_id: str, event: AlarmEvent) -> NotificationResult:
    """The email an alarm event sent its owners."""
    return NotificationResult(
        alarm_id=event.alarm_id,
        alarm_event_id=event_id,
        channel="email",
        recipient="ops@example.com",
        attempt=1,
        at=event.occurred_at + timedelta(seconds=5),
        transition=event.transition,
    )


async def seed(url: str, targets: int, days: int, alarms: int, *, deliveries: bool = False) -> None:
    """The history: `days - 1` older days by COPY (runs written as before `005_evaluation_runs.sql`, seen once),
    the newest day and the alarms through `History`, as the reporter's handlers write them; with `deliveries`,
    one email per alarm event too."""
    pool = await create_pool(url, max_size=8)
    history = History(pool)
    await history.migrate()
    started = time.perf_counter()
    async with pool.acquire() as conn:
        # INCLUDING DEFAULTS: `seen_count` is NOT NULL with a default since the runs migration.
        await conn.execute(
            "CREATE TEMP TABLE staged (LIKE reporter.evaluations INCLUDING DEFAULTS); "
            "ALTER TABLE staged ALTER COLUMN evaluation TYPE text"
        )
        for day in range(1, days):
            rows = []
            for n in range(targets):
                e = evaluation(n, day)
                assert e.certificate is not None and e.security is not None and e.expiry is not None
                rows.append(
                    (
                        f"d{day}-{n}",
                        e.target_key,
                        e.certificate.fingerprint_sha256,
                        e.evaluated_at,
                        e.alarm.level,
                        e.security.grade,
                        e.expiry.days_remaining,
                        e.model_dump_json(),
                    )
                )
            await conn.copy_records_to_table("staged", records=rows, columns=COLUMNS)
            await conn.execute(
                f"INSERT INTO reporter.evaluations ({', '.join(COLUMNS)}) "
                f"SELECT {', '.join(COLUMNS[:-1])}, evaluation::jsonb FROM staged; TRUNCATE staged"
            )
            print(f"  day -{day}: {targets:,} evaluations by COPY ({time.perf_counter() - started:.0f} s)", flush=True)

    async def record(worker: int) -> None:
        for n in range(worker, targets, 8):
            await history.record_evaluation(f"d0-{n}", evaluation(n, 0))
        for n in range(worker, alarms, 8):
            for event_id, event in alarm_events(n * max(1, targets // alarms)):
                await history.record_alarm(event_id, event)
                if deliveries:
                    await history.record_notification(f"n-{event_id}", _delivery(event_id, event), ok=True)

    await asyncio.gather(*(record(w) for w in range(8)))
    for table in ("evaluations", "latest", "alarms", "alarm_events", "notifications"):
        await pool.execute(f"VACUUM ANALYZE reporter.{table}")
    print(f"seeded {targets:,} targets x {days} days and {alarms:,} alarms in {time.perf_counter() - started:.0f} s")
    await pool.close()


@contextlib.asynccontextmanager
async def seeded_history(args: argparse.Namespace, *, deliveries: bool = False) -> AsyncIterator[tuple[str, Any]]:
    """The database `args.database` names (seeded before), or a throwaway one `seed` fills from `args.targets`,
    `args.days` and `args.alarms`, dropped afterwards unless `args.keep`; yields its URL and an admin connection."""
    admin = await asyncpg.connect(ADMIN_URL)
    name = None
    url = args.database
    try:
        if url is None:
            name = f"certmon_bench_{uuid.uuid4().hex[:12]}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
            await seed(url, args.targets, args.days, args.alarms, deliveries=deliveries)
            if args.keep:
                print(f"kept: {url}", flush=True)
        yield url, admin
    finally:
        if name is not None and not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, targets: int, requests: int) -> None:
    """Time each page `requests` times on the app over `url`; print one JSON line of results."""
    pool = await create_pool(url, max_size=10)
    app = create_app(
        History(pool),
        Settings(api_tokens=[], api_write_tokens=[]),
        links=ActionLinkSigner(b"benchmark-link-key-0123"),
        clock=lambda: NOW,
    )
    rng = random.Random(7)
    deep_cursor: dict[str, str] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60) as c:

        async def deep_page() -> str:
            # A cursor some pages in, taken from the list itself.
            if "url" not in deep_cursor:
                address = "/certificates"
                for _ in range(20):
                    page = (await c.get(address)).text
                    address = page.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
                deep_cursor["url"] = address
            return deep_cursor["url"]

        pages = {
            "overview": lambda: "/",
            "certificates": lambda: "/certificates",
            "certificates, page 21": None,
            "certificates by owner": lambda: f"/certificates?owner=team-{rng.randrange(200)}",
            "certificates by text": lambda: f"/certificates?q=h{rng.randrange(targets):06d}",
            "certificates by days left": lambda: (
                f"/certificates?days_min={rng.randrange(300)}&days_max=400&sort=expiry"
            ),
            "certificate": lambda: f"/certificates/{rng.randrange(targets):064x}",
            "timeline": lambda: "/timeline",
            "alarms": lambda: "/alarms",
            "alarms by owner and state": lambda: f"/alarms?owner=team-{rng.randrange(200)}&state=open",
        }
        results = {}
        for name, path in pages.items():
            timings = []
            for _ in range(requests):
                address = await deep_page() if path is None else path()
                started = time.perf_counter()
                response = await c.get(address)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (address, response.status_code)
            results[name] = (statistics.median(timings), percentile(timings, 0.95), max(timings))
    await pool.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pages": results, "peak_rss_mib": peak_mib}))


async def main(args: argparse.Namespace) -> None:
    """Build the throwaway database, measure in a fresh process, print the table, drop the database."""
    name = f"certmon_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        await seed(url, args.targets, args.days, args.alarms)
        size = await admin.fetchval("SELECT pg_size_pretty(pg_database_size($1))", name)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.dashboard",
            "--measure",
            url,
            "--targets",
            str(args.targets),
            "--requests",
            str(args.requests),
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the measuring process failed ({process.returncode})")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    print(f"\n{args.targets:,} targets x {args.days} days, {args.alarms:,} alarms; database {size}")
    print(f"{args.requests} requests per page, in process (httpx ASGI transport), rendering included\n")
    print("| page | p50 ms | p95 ms | max ms |\n|---|---|---|---|")
    for page, (p50, p95, worst) in result["pages"].items():
        print(f"| {page} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")
    print(f"\npeak RSS of the serving process: {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--measure", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        asyncio.run(measure(arguments.measure, arguments.targets, arguments.requests))
    else:
        asyncio.run(main(arguments))
