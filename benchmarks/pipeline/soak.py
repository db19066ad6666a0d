"""The `soak` phase: a large estate of file targets on a long interval, watched for `--soak-minutes`.

Issue 17's bounds at 100,000 targets on an hourly interval: every service under 300 MB and not growing, every
target scanned on time, history growing by what changed. After the first scan (measured as in the other phases),
every `--sample-every` seconds it records:

- each service's RSS (psutil), RabbitMQ's and PostgreSQL's CPU share since the previous sample;
- the worst lateness now: the longest any enabled target has been past its `next_due` without being claimed
  (`scanner.targets`), and the evaluations the reporter has stored so far;
- the messages ready in the vhost's queues and the rows waiting in each outbox;
- the database's size.

At the end: RSS per service at the first and last sample and its peak, the worst lateness seen, and the size of
every table with its indexes; bytes per target per day are the growth of the database (and of the reporter's
history tables alone) from the end of the first scan to the end, over the targets and the days that passed.
The processed-event ids and published outbox rows that every service keeps for a week grow until that window is
full, so the whole database's figure overstates a long run's growth; the history tables' figure does not.
"""

import asyncio
import time
from typing import Any

from benchmarks.pipeline import infra
from benchmarks.pipeline.measure import Sampler, _rss
from benchmarks.pipeline.run import Context, PhaseResult, Stack, file_targets, first_scan, git_head, log, write_config

LATENESS = (
    "SELECT coalesce(max(extract(epoch FROM now() - next_due)), 0)::float8 FROM scanner.targets "
    "WHERE enabled AND next_due < now()"
)
TABLE_SIZES = """
SELECT n.nspname || '.' || c.relname AS name, pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes, coalesce(s.n_live_tup, 0) AS rows
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY pg_total_relation_size(c.oid) DESC
"""
HISTORY_BYTES = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'reporter' AND c.relkind IN ('r', 'p') "
    "AND c.relname NOT IN ('processed_events', 'outbox')"
)
OUTBOX_SCHEMAS = ("scanner", "alarmer", "notifier", "reporter")


async def _outbox_backlog(stack: Stack) -> int:
    assert stack.conn is not None
    waiting = 0
    for schema in OUTBOX_SCHEMAS:
        waiting += int(
            await stack.conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL') or 0
        )
    return waiting


async def _sizes(stack: Stack) -> tuple[int, int]:
    assert stack.conn is not None
    database = int(await stack.conn.fetchval("SELECT pg_database_size(current_database())"))
    return database, int(await stack.conn.fetchval(HISTORY_BYTES))


async def soak(
    stack: Stack, result: PhaseResult, sampler: Sampler, *, targets: int, minutes: float, every: float
) -> None:
    """Sample the running stack for `minutes` (see the module) and add the soak's rows to `result`."""
    assert stack.conn is not None
    services = {name: service for name, service in stack.services.items()}
    started = time.monotonic()
    db0, history0 = await _sizes(stack)
    samples: list[dict[str, Any]] = []
    worst_late = 0.0
    stored0 = infra.reporter_evaluations(await infra.consumed_totals(list(services.values())))
    sampler.begin()
    while True:
        elapsed = time.monotonic() - started
        late = float(await stack.conn.fetchval(LATENESS))
        worst_late = max(worst_late, late)
        queues = await asyncio.to_thread(infra.queue_lengths, stack.name)
        stored = infra.reporter_evaluations(await infra.consumed_totals(list(services.values())))
        database, _ = await _sizes(stack)
        sample = {
            "minute": elapsed / 60,
            "rss_mib": {name: _rss(s.pid) / 2**20 for name, s in services.items()},
            "late_s": late,
            "stored": stored - stored0,
            "queued": sum(queues.values()),
            "outbox": await _outbox_backlog(stack),
            "db_mib": database / 2**20,
        }
        samples.append(sample)
        rss = " ".join(f"{name} {mib:.0f}" for name, mib in sample["rss_mib"].items())
        line = (
            f"{sample['minute']:6.1f} min | late {late:6.1f} s | stored {sample['stored']:>9,} | queued "
            f"{sample['queued']:>7,} | outbox {sample['outbox']:>7,} | db {sample['db_mib']:7.0f} MiB | RSS MiB {rss}"
        )
        result.add(f"  soak t={sample['minute']:.1f} min", line[line.index("|") + 2 :])
        log(f"soak {line}")
        if elapsed >= minutes * 60:
            break
        await asyncio.sleep(every)
    window = sampler.end()
    days = (time.monotonic() - started) / 86400
    db1, history1 = await _sizes(stack)
    result.data["soak_samples"] = samples
    result.add("soak: minutes sampled", f"{(time.monotonic() - started) / 60:.0f}", "soak_minutes", days * 1440)
    result.add("soak: worst lateness (s)", f"{worst_late:.1f}", "soak_worst_late_s", worst_late)
    per_day = (db1 - db0) / targets / days if days > 0 else 0.0
    history_per_day = (history1 - history0) / targets / days if days > 0 else 0.0
    result.add(
        "soak: bytes / target / day, whole db (history only)",
        f"{per_day:,.0f} ({history_per_day:,.0f})",
        "soak_bytes_per_target_day",
        {"database": per_day, "history": history_per_day},
    )
    for name in services:
        series = [s["rss_mib"][name] for s in samples]
        result.add(
            f"  soak RSS {name} (MiB)",
            f"first {series[0]:.0f}, last {series[-1]:.0f}, peak {max(series):.0f}",
        )
    for group in ("rabbitmq", "postgres"):
        result.add(f"  soak CPU {group}", f"{window.share(group):.0%} of a core")
    rows = await stack.conn.fetch(TABLE_SIZES)
    result.data["soak_tables"] = [dict(r) for r in rows]
    for row in rows[:12]:
        result.add(
            f"  table {row['name']}",
            f"{row['table_bytes'] / 2**20:,.1f} MiB + indexes {row['index_bytes'] / 2**20:,.1f} MiB, "
            f"{row['rows']:,} live rows",
        )


async def soak_phase(ctx: Context) -> PhaseResult:
    """Start a stack on the file estate at `--soak-interval`, run its first scan, then `soak` it."""
    args = ctx.args
    targets = file_targets(ctx.estate)
    result = PhaseResult("soak", len(targets))
    config = ctx.workdir / "soak.yaml"
    write_config(
        config,
        ctx.estate,
        targets,
        interval=f"{args.soak_interval}s",
        smtp_port=ctx.smtp.port,
        per_host=args.per_host_concurrency,
    )
    stack = Stack("soak", ctx.workdir, config)
    result.add("code (services start from this checkout)", git_head(), "git_head", git_head())
    ctx.cleanup.push("stack soak", stack.cleanup.run)
    sampler: Sampler | None = None
    try:
        log(f"soak: {len(targets):,} targets every {args.soak_interval} s; starting vhost, database and services")
        await stack.up()
        sampler = Sampler(stack.groups(None), period=5.0)
        sampler.start()
        await first_scan(stack, result, len(targets), sampler, within=args.timeout)
        log(f"soak: first scan done: {result.data['first_rate']:,.0f} obs/s; sampling {args.soak_minutes} min")
        await soak(stack, result, sampler, targets=len(targets), minutes=args.soak_minutes, every=args.sample_every)
        failed = {s.name: s.process.returncode for s in stack.services.values() if s.process.poll() is not None}
        if failed:
            result.add("services that exited", str(failed))
    except Exception as exc:  # report what was measured
        result.add("PHASE FAILED", str(exc)[:2000], "error", str(exc))
        log(f"soak failed: {exc}")
    finally:
        if sampler is not None:
            sampler.stop()
        await stack.down()
    return result
