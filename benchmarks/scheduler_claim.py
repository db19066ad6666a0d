"""The scanner's scheduler claiming 20,000 due targets, and recording observations, before and after a change.

    .venv/bin/python -m benchmarks.scheduler_claim [--targets 20000] [--batch 100 500] [--observations 2000]
                                                   [--baseline COMMIT]

Runs the same measurement twice in one invocation, each in a child process on a throwaway database of the local
PostgreSQL (`certmon_bench_<random>`, created, migrated by the code under test, and dropped): once on the
scanner of `--baseline` (its `services/` and `shared/` extracted with `git archive`) and once on the working
tree. The targets are certificate files scanned every minute. For each batch size it makes every target due,
then times one `Scheduler.tick()` that claims them all, and counts the statements the client sent (asyncpg's
query logger on a one-connection pool; the pool's reset on release left out) and the database's own time
(`pg_stat_database.active_time`); then it ticks five minutes later, with no request observed, and counts what
is claimed again (every target before pending requests; none after, within their 10-minute lease). It then records
`--observations` observations the way the scan handler does (an `already_processed` check first where the
store still has one) and counts their statements. Not a test: pytest does not collect it.
"""

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

ADMIN_URL = os.environ.get("CERTMON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


async def _active_ms(admin: Any, name: str) -> float:
    value = await admin.fetchval("SELECT active_time FROM pg_stat_database WHERE datname = $1", name)
    return float(value or 0.0)


async def measure(targets: int, batches: list[int], observations: int) -> dict[str, Any]:
    """In this process's `services` and `shared`: claim every target once per batch size, then record
    observations; wall seconds, statements and database seconds of each."""
    import asyncpg
    import structlog

    from services.scanner.adapters.targets_repo import TargetsRepository
    from services.scanner.service_layer import scheduler as scheduling
    from shared.db import create_pool
    from shared.events import Observation, Target, make_event

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    name = f"certmon_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    result: dict[str, Any] = {"claims": [], "default_batch": scheduling.BATCH}
    try:
        pool = await create_pool(url, min_size=1, max_size=1)
        repo = TargetsRepository(pool)
        await repo.migrate()
        estate = [Target(file=f"/srv/certs/{i:06d}.pem", interval_seconds=60) for i in range(targets)]
        await repo.sync(estate, now=NOW - dt.timedelta(hours=2))
        sent: list[str] = []
        async with pool.acquire() as conn:
            reset = conn.get_reset_query()
            conn.add_query_logger(lambda record: sent.append(record.query))

        async def counted(call: Any) -> tuple[float, int, float]:
            """Wall seconds, statements and database seconds of `call()` (statistics flushed by a reconnect)."""
            await pool.expire_connections()
            await asyncio.sleep(0.6)  # a backend reports its statistics at most every 500 ms, and at exit
            before = await _active_ms(admin, name)
            async with pool.acquire() as conn:
                conn.add_query_logger(lambda record: sent.append(record.query))
            sent.clear()
            started = time.perf_counter()
            await call()
            wall = time.perf_counter() - started
            await asyncio.sleep(0)
            statements = sum(1 for q in sent if q != reset)
            await pool.expire_connections()
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
            await asyncio.sleep(0.6)
            return wall, statements, (await _active_ms(admin, name) - before) / 1000

        for batch in batches:
            await repo.make_all_due(NOW - dt.timedelta(minutes=1))
            await pool.execute("DELETE FROM scanner.outbox")
            await pool.execute("VACUUM ANALYZE scanner.targets")
            await repo.claim_due(NOW - dt.timedelta(hours=3), 1)  # nothing due: warms the statement cache
            scheduling.BATCH = batch
            tick = scheduling.Scheduler(repo, on_enqueued=lambda: None, clock=lambda: NOW, tick_seconds=5)
            claimed: list[int] = []

            async def drain(tick: Any = tick, claimed: list[int] = claimed) -> None:
                claimed.append(await tick.tick())

            wall, statements, db = await counted(drain)
            outbox = await pool.fetchval("SELECT count(*) FROM scanner.outbox")
            # Five minutes on, every target is due again and none of its requests was observed.
            again = scheduling.Scheduler(
                repo, on_enqueued=lambda: None, clock=lambda: NOW + dt.timedelta(minutes=5), tick_seconds=5
            )
            started = time.perf_counter()
            reclaimed = await again.tick()
            result["claims"].append(
                {
                    "batch": batch,
                    "claimed": claimed[0],
                    "outbox": outbox,
                    "wall": wall,
                    "statements": statements,
                    "db": db,
                    "reclaimed": reclaimed,
                    "reclaim_wall": time.perf_counter() - started,
                }
            )

        handled = estate[:observations]
        checks = hasattr(repo, "already_processed")

        async def record_all() -> None:
            for i, target in enumerate(handled):
                observation = Observation(target=target, observed_at=NOW)
                outgoing = make_event("certificate.observed.v1", observation, source="bench", subject=target.key)
                if checks:
                    await repo.already_processed("bench", f"request-{i}")
                    await repo.record_observation("bench", f"request-{i}", observation, outgoing)
                else:
                    await repo.record_observation("bench", f"request-{i}", observation, outgoing, due_at=NOW)

        wall, statements, db = await counted(record_all)
        result["record"] = {"observations": observations, "wall": wall, "statements": statements, "db": db}
        await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return result


def run_child(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    """`measure` in a child process whose `services` and `shared` come from `tree`."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--targets", str(args.targets),
               "--observations", str(args.observations), "--batch", *map(str, args.batch)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def extract(commit: str, into: Path) -> Path:
    """`services/` and `shared/` of `commit`, as files under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "services", "shared"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def report(runs: dict[str, dict[str, Any]], targets: int) -> None:
    """The claim table and the observation table, one row per variant (and batch size)."""
    print(f"\nclaiming {targets:,} due targets in one tick:\n")
    print("| code | batch | claimed | outbox rows | wall s | targets/s | statements | database s | "
          "claimed again 5 min later, none observed (wall s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for label, result in runs.items():
        for c in result["claims"]:
            default = " (default)" if c["batch"] == result["default_batch"] else ""
            print(f"| {label} | {c['batch']}{default} | {c['claimed']:,} | {c['outbox']:,} | {c['wall']:.2f} | "
                  f"{c['claimed'] / c['wall']:,.0f} | {c['statements']:,} | {c['db']:.2f} | "
                  f"{c['reclaimed']:,} ({c['reclaim_wall']:.2f}) |")  # fmt: skip
    print("\nrecording observations as the scan handler does:\n")
    print("| code | observations | wall s | statements per observation | database s |\n|---|---|---|---|---|")
    for label, result in runs.items():
        r = result["record"]
        print(f"| {label} | {r['observations']:,} | {r['wall']:.2f} | {r['statements'] / r['observations']:.1f} | "
              f"{r['db']:.2f} |")  # fmt: skip


def main() -> None:
    """Parse the arguments; as the parent, run the baseline and the working tree; as a child, measure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--observations", type=int, default=2_000)
    parser.add_argument("--baseline", default="08eeb77")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.targets, args.batch, args.observations))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            f"before ({args.baseline})": run_child(extract(args.baseline, Path(tmp)), args),
            "after (working tree)": run_child(ROOT, args),
        }
    report(runs, args.targets)


if __name__ == "__main__":
    main()
