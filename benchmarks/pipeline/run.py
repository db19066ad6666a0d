"""End-to-end throughput of the production path: five services as processes over RabbitMQ and PostgreSQL.

    .venv/bin/python -m benchmarks.pipeline [--files 20000] [--endpoints 300] [--quick]
                                            [--phases files,endpoints,blackhole]

Each phase gets a fresh RabbitMQ vhost and PostgreSQL database, and starts `certmon reporter`, `notifier`,
`alarmer`, two `evaluator`s and then two `scanner`s (each its own process, its own HTTP port), with an SMTP sink in
this process as the email channel. The scanners sync the targets of the generated certmon.yaml at start, which
makes every target due at once: the **first scan** runs from the first scanner's launch until the reporter's
`latest` table holds an evaluation of every target. Then the scanners are restarted with a short interval, and
the **steady state** counts the evaluations the reporter stores per second while every target is re-scanned on
that interval. The same estate then goes through `certmon check --json` (one process, no broker, no database): the
in-process floor.

Phases:
- `files`: `--files` distinct leaf certificates as PEM files (`file:` targets). After the steady state the
  alarmer is paused (SIGSTOP) for `--pause` seconds while scans go on: RSS of every process and the queue lengths
  are sampled, and the time the alarmer takes to catch up after SIGCONT is reported.
- `endpoints`: `--endpoints` TLS endpoints served by nginx on 127.0.0.1, one certificate each. After the steady
  state, one endpoint (the canary, scanned every 10 s) gets a certificate that expires in 3 days (nginx reload),
  and the time until its alarm email reaches the SMTP sink is measured.
- `blackhole`: the endpoints plus 10% more targets on ports that accept TCP and never answer; first scan only.
- `soak` (not in the default phases): `--files` targets on `--soak-interval` (default 1 h), sampled every
  `--sample-every` s for `--soak-minutes` after the first scan: RSS, worst lateness, queues, outboxes, database
  size; table sizes and bytes per target per day at the end (`benchmarks/pipeline/soak.py`). Issue 17's run:
  `--phases soak --files 100000 --endpoints 0`.
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.pipeline import infra, pki
from benchmarks.pipeline.infra import HOST, Cleanup, Service
from benchmarks.pipeline.measure import DbCounters, Sampler, Window, db_counters, pids_named

SERVICE_ORDER = [
    ("reporter", "reporter"),
    ("notifier", "notifier"),
    ("alarmer", "alarmer"),
    ("evaluator-1", "evaluator"),
    ("evaluator-2", "evaluator"),
]
SCANNERS = [("scanner-1", "scanner"), ("scanner-2", "scanner")]
CANARY_INTERVAL = 10


@dataclass
class Estate:
    roots_pem: Path
    file_dir: Path
    file_paths: list[Path]
    endpoint_ports: list[int]
    canary_port: int
    canary_cert: Path
    key_path: Path
    blackhole_ports: list[int]


@dataclass
class PhaseResult:
    name: str
    targets: int
    rows: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, value: str, key: str | None = None, raw: Any = None) -> None:
        self.rows.append((label, value))
        if key is not None:
            self.data[key] = raw


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- configuration -----------------------------------------------------------------------------------------------


def write_config(
    path: Path, estate: Estate, targets: list[dict[str, Any]], *, interval: str, smtp_port: int, per_host: int
) -> None:
    """A certmon.yaml (written as JSON, which is YAML) for the services and for `certmon check`."""
    config = {
        "trust": {"ca_files": [str(estate.roots_pem)]},
        "defaults": {"owner": "bench-team", "interval": interval},
        "channels": {
            "email": {"host": HOST, "port": smtp_port, "starttls": False, "from": "certmon@bench.test", "timeout": 10}
        },
        "owners": {"bench-team": {"email": ["owners@bench.test"]}},
        "scanning": {"per_host_concurrency": per_host},
        "reports": {"daily": {"enabled": False}, "weekly": {"enabled": False}, "monthly": {"enabled": False}},
        "targets": targets,
    }
    path.write_text(json.dumps(config))


def file_targets(estate: Estate) -> list[dict[str, Any]]:
    return [{"file": str(p)} for p in estate.file_paths]


def endpoint_targets(estate: Estate) -> list[dict[str, Any]]:
    return [{"host": HOST, "port": port} for port in estate.endpoint_ports]


# --- one stack of services ---------------------------------------------------------------------------------------


class Stack:
    """A fresh vhost and database and the five services on them (two scanners, two evaluators)."""

    def __init__(self, phase: str, workdir: Path, config: Path) -> None:
        self.phase = phase
        self.workdir = workdir / phase
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.cleanup = Cleanup()
        self.name = f"certmon_pipe_{phase}_{secrets.token_hex(3)}"
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.conn: asyncpg.Connection | None = None

    async def up(self) -> None:
        amqp = infra.create_vhost(self.name, self.cleanup)
        database = await infra.create_database(self.name, self.cleanup)
        self.env = {
            "amqp_url": amqp,
            "database_url": database,
            "config": str(self.config),
            "link_secret": secrets.token_hex(32),
        }
        self.conn = await asyncpg.connect(database)
        # Downstream first: the queues must exist before anything is published to them (publishes are mandatory).
        for name, command in SERVICE_ORDER:
            self.start(name, command)
            await infra.wait_ready([self.services[name]])

    def start(self, name: str, command: str) -> Service:
        service = infra.start_service(name, command, workdir=self.workdir, env_common=self.env, cleanup=self.cleanup)
        self.services[name] = service
        return service

    async def restart_scanners(self, config: Path) -> None:
        self.env["config"] = str(config)
        for name, _ in SCANNERS:
            self.services[name].stop()
        for name, command in SCANNERS:
            self.start(name, command)
        await infra.wait_ready([self.services[name] for name, _ in SCANNERS])

    async def down(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
        await asyncio.to_thread(self.cleanup.run)

    # reads of the reporter's tables
    async def latest_count(self, where: str = "") -> int:
        assert self.conn is not None
        return int(await self.conn.fetchval(f"SELECT count(*) FROM reporter.latest {where}"))

    async def evaluations_count(self) -> int:
        assert self.conn is not None
        return int(await self.conn.fetchval("SELECT count(*) FROM reporter.evaluations"))

    async def first_observed(self) -> float:
        assert self.conn is not None
        value = await self.conn.fetchval(
            "SELECT min((evaluation->>'observed_at')::timestamptz) FROM reporter.evaluations"
        )
        return float(value.timestamp())

    def groups(self, nginx: infra.Nginx | None) -> dict[str, Any]:
        groups: dict[str, Any] = {
            name: (lambda s=name: [self.services[s].pid] if self.services[s].process.poll() is None else [])
            for name, _ in [*SERVICE_ORDER, *SCANNERS]
        }
        groups["rabbitmq"] = lambda: pids_named("beam.smp")
        groups["postgres"] = lambda: pids_named("postgres")
        if nginx is not None:
            groups["nginx"] = nginx.pids
        return groups


async def outbox_rows(stack: Stack, result: PhaseResult, since: float, prefix: str) -> None:
    """Per service outbox: events enqueued since `since`, how many are still unpublished, and the publish lag (how
    long an event waited in the outbox before the relay's broker confirm). Skipped if the outbox has no such
    columns (its layout is the services' business)."""
    assert stack.conn is not None
    for schema in ("scanner", "alarmer", "notifier", "reporter"):
        try:
            row = await stack.conn.fetchrow(
                f"SELECT count(*) AS n, count(*) FILTER (WHERE published_at IS NULL) AS pending, "
                f"avg(extract(epoch FROM published_at - created_at)) AS lag, "
                f"max(extract(epoch FROM coalesce(published_at, now()) - created_at)) AS worst "
                f"FROM {schema}.outbox WHERE created_at >= to_timestamp($1)",
                since,
            )
        except asyncpg.PostgresError:
            continue
        if row is None or not row["n"]:
            continue
        lag = f"{row['lag']:.1f} s" if row["lag"] is not None else "-"
        result.add(
            f"  {prefix} {schema} outbox",
            f"{row['n']:,} events, {row['pending']:,} unpublished at the end, wait avg {lag}, max {row['worst']:.1f} s",
            f"{prefix}_{schema}_outbox",
            {k: (float(v) if v is not None else None) for k, v in row.items()},
        )


# --- measurements -----------------------------------------------------------------------------------------------


async def wait_until(check: Any, what: str, within: float, poll: float = 0.25) -> float:
    """Poll the coroutine function `check` until it returns True; returns the wall time (time.time()) it did."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(poll)


def window_rows(result: PhaseResult, window: Window, prefix: str, observations: int) -> None:
    """CPU share, CPU milliseconds per observation and peak RSS of each group, in one row per group."""
    shares = {group: window.share(group) for group in window.cpu}
    n = max(observations, 1)
    result.data[f"{prefix}_cpu_share"] = shares
    result.data[f"{prefix}_cpu_ms_per_obs"] = {g: 1000 * v / n for g, v in window.cpu.items()}
    result.data[f"{prefix}_peak_rss_mib"] = {g: v / 2**20 for g, v in window.peak_rss.items()}
    ours = sum(v for g, v in window.cpu.items() if g not in ("rabbitmq", "postgres", "nginx"))
    everything = sum(window.cpu.values())
    cores = os.cpu_count() or 1
    result.add(
        f"{prefix} CPU, whole machine",
        f"{window.machine_busy / window.wall:.0%} of a core of {cores} (benchmarked processes "
        f"{everything / window.wall:.0%}; the rest is other users)",
        f"{prefix}_machine_share",
        window.machine_busy / window.wall,
    )
    result.add(
        f"{prefix} CPU ms / obs, all benchmarked",
        f"{1000 * everything / n:.2f} (certmon services {1000 * ours / n:.2f})",
    )
    for group in sorted(shares, key=lambda g: -shares[g]):
        rss = window.peak_rss.get(group, 0) / 2**20
        rss_text = f", peak RSS {rss:.0f} MiB" if group != "postgres" else ""
        result.add(
            f"  {prefix} CPU {group}",
            f"{shares[group]:.0%} of a core, {1000 * window.cpu[group] / n:.2f} ms/obs{rss_text}",
        )


def per_observation_rows(
    result: PhaseResult,
    observations: int,
    messages: dict[str, float],
    db: DbCounters,
    prefix: str,
) -> None:
    n = max(observations, 1)
    total = sum(messages.values())
    result.add(f"{prefix} deliveries consumed / obs", f"{total / n:.2f}", f"{prefix}_deliveries_per_obs", total / n)
    detail = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(messages.items(), key=lambda kv: -kv[1]) if v)
    result.add("  by event type", detail or "-")
    result.add(
        f"{prefix} db commits / obs",
        f"{db.commits / n:.2f} (rollbacks {db.rollbacks / n:.2f})",
        f"{prefix}_commits_per_obs",
        db.commits / n,
    )
    result.add(
        f"{prefix} db rows ins/upd/del / obs",
        f"{db.inserted / n:.1f} / {db.updated / n:.1f} / {db.deleted / n:.1f}",
        f"{prefix}_rows_per_obs",
        [db.inserted / n, db.updated / n, db.deleted / n],
    )
    result.add(f"{prefix} WAL bytes / obs (cluster)", f"{db.wal_lsn / n:,.0f}", f"{prefix}_wal_per_obs", db.wal_lsn / n)


async def first_scan(
    stack: Stack, result: PhaseResult, expected: int, sampler: Sampler, *, where: str = "", within: float
) -> float:
    """Start the scanners and wait for the reporter to hold an evaluation of `expected` targets (matching
    `where`); adds the phase's first-scan rows and returns the rate (targets per second)."""
    assert stack.conn is not None
    messages0 = await infra.consumed_totals(list(stack.services.values()))
    db0 = await db_counters(stack.conn)
    sampler.begin()
    launched = time.time()
    for name, command in SCANNERS:
        stack.start(name, command)

    async def done() -> bool:
        for name, _ in SCANNERS:
            service = stack.services[name]
            if service.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{service.tail()}")
        return await stack.latest_count(where) >= expected

    finished = await wait_until(done, f"{expected} evaluations in reporter.latest", within)
    window = sampler.end()
    db = (await db_counters(stack.conn)).minus(db0)
    messages1 = await infra.consumed_totals(list(stack.services.values()))
    first = await stack.first_observed()
    seconds = finished - launched
    rate = expected / seconds
    from_first = expected / max(finished - first, 1e-9)
    result.add("first scan: targets", f"{expected:,}")
    result.add("first scan: seconds from scanner launch", f"{seconds:.1f}", "first_seconds", seconds)
    result.add("first scan: obs/s from scanner launch", f"{rate:,.0f}", "first_rate", rate)
    result.add("first scan: obs/s from first observation", f"{from_first:,.0f}", "first_rate_from_obs", from_first)
    stored = infra.reporter_evaluations(messages1) - infra.reporter_evaluations(messages0)
    messages = infra.by_event_type({k: messages1.get(k, 0.0) - messages0.get(k, 0.0) for k in messages1})
    per_observation_rows(result, stored, messages, db, "first scan:")
    await outbox_rows(stack, result, launched, "first scan:")
    window_rows(result, window, "first scan:", stored)
    return rate


async def steady_state(
    stack: Stack, result: PhaseResult, count: int, sampler: Sampler, *, interval: int, seconds: float, settle: float
) -> float:
    """Evaluations stored per second over `seconds`, after waiting `settle` seconds for re-scans to start."""
    assert stack.conn is not None
    log(f"  steady state: waiting {settle:.0f} s for the first re-scans, then measuring {seconds:.0f} s")
    await asyncio.sleep(settle)
    messages0 = await infra.consumed_totals(list(stack.services.values()))
    db0 = await db_counters(stack.conn)
    c0 = infra.reporter_evaluations(messages0)
    sampler.begin()
    start = time.monotonic()
    since = time.time()
    await asyncio.sleep(seconds)
    messages1 = await infra.consumed_totals(list(stack.services.values()))
    wall = time.monotonic() - start
    window = sampler.end()
    db = (await db_counters(stack.conn)).minus(db0)
    c1 = infra.reporter_evaluations(messages1)
    rate = (c1 - c0) / wall
    offered = count / interval
    result.add(
        f"steady ({interval} s interval): obs/s",
        f"{rate:,.0f} (offered {offered:,.0f}/s, {c1 - c0:,} in {wall:.0f} s)",
        "steady_rate",
        rate,
    )
    messages = infra.by_event_type({k: messages1.get(k, 0.0) - messages0.get(k, 0.0) for k in messages1})
    per_observation_rows(result, c1 - c0, messages, db, "steady:")
    await outbox_rows(stack, result, since, "steady:")
    window_rows(result, window, "steady:", c1 - c0)
    return rate


async def _alarmer_backlog(stack: Stack) -> tuple[int, dict[str, int]]:
    lengths = await asyncio.to_thread(infra.queue_lengths, stack.name)
    return sum(v for q, v in lengths.items() if q.startswith("certmon.alarmer.")), lengths


async def backpressure(stack: Stack, result: PhaseResult, sampler: Sampler, *, pause: float, relaxed: int) -> None:
    """SIGSTOP the alarmer for `pause` seconds while a full round of scans goes on (every target made due at
    once, as `Scheduler.trigger_now` does; the scanners run on a `relaxed` interval otherwise); RSS and queue
    lengths meanwhile, and the time the alarmer takes after SIGCONT to get its queue back to where it was."""
    assert stack.conn is not None
    alarmer = stack.services["alarmer"]
    start = time.monotonic()
    backlog, _ = await _alarmer_backlog(stack)
    while backlog > 50 and time.monotonic() - start < 120:
        await asyncio.sleep(2.0)
        backlog, _ = await _alarmer_backlog(stack)
    before = backlog
    log(f"  backpressure: alarmer backlog {before} before; pausing it for {pause:.0f} s and scanning everything")
    sampler.begin()
    alarmer.pause()
    start = time.monotonic()
    await stack.conn.execute(
        "UPDATE scanner.targets SET next_due = now(), pending_due_at = NULL, pending_until = NULL WHERE enabled"
    )
    max_queue: dict[str, int] = {}
    try:
        while time.monotonic() - start < pause:
            _, lengths = await _alarmer_backlog(stack)
            for queue, value in lengths.items():
                max_queue[queue] = max(max_queue.get(queue, 0), value)
            await asyncio.sleep(max(0.0, min(3.0, pause - (time.monotonic() - start))))
    finally:
        alarmer.resume()
    window = sampler.end()
    resumed = time.monotonic()
    target = max(50, before)
    caught_up = None
    backlog = 0
    while time.monotonic() - resumed < max(180.0, pause * 3):
        backlog, _ = await _alarmer_backlog(stack)
        if backlog <= target:
            caught_up = time.monotonic() - resumed
            break
        await asyncio.sleep(1.0)
    queued = sum(v for q, v in max_queue.items() if q.startswith("certmon.alarmer."))
    label = f"backpressure: alarmer paused {pause:.0f} s, full round scanned, its queue"
    result.add(label, f"{before:,} before, peak {queued:,}", "bp_queue", queued)
    busiest = sorted(max_queue.items(), key=lambda kv: -kv[1])[:4]
    result.add("  queue peaks", ", ".join(f"{q.removeprefix('certmon.')} {v:,}" for q, v in busiest))
    result.add(
        f"  catch-up after SIGCONT (alarmer queue <= {target:,})",
        f"{caught_up:.1f} s"
        if caught_up is not None
        else f"not within {time.monotonic() - resumed:.0f} s ({backlog:,} left)",
        "bp_catch_up_seconds",
        caught_up,
    )
    upstream = [name for name, _ in [*SCANNERS, *SERVICE_ORDER] if name != "alarmer"]
    peaks = {name: window.peak_rss.get(name, 0) / 2**20 for name in upstream}
    result.data["bp_peak_rss_mib"] = peaks | {"rabbitmq": window.peak_rss.get("rabbitmq", 0) / 2**20}
    result.add("  peak RSS during pause MiB", ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    result.add("  RabbitMQ (beam.smp) peak RSS during pause", f"{window.peak_rss.get('rabbitmq', 0) / 2**20:.0f} MiB")


async def canary_latency(
    stack: Stack, result: PhaseResult, estate: Estate, nginx: infra.Nginx, smtp: infra.SmtpSink, roots: list[Any]
) -> None:
    """Swap the canary's certificate for one expiring in 3 days; time until its alarm email arrives."""
    assert stack.conn is not None
    label = f"{HOST}:{estate.canary_port}"
    factory = pki.LeafFactory()
    factory.key_pem = estate.key_path.read_bytes()
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(factory.key_pem, None)
    factory.key = key  # type: ignore[assignment]
    factory._public = key.public_key()  # type: ignore[assignment]
    pem = factory.leaf(roots[0], "canary.bench.test", days=3, ip=HOST)
    estate.canary_cert.write_bytes(pem)
    before = len(smtp.mails)
    swapped = time.monotonic()
    swapped_wall = time.time()
    nginx.reload()
    log(f"  latency: canary {label} now serves a certificate expiring in 3 days")
    deadline = swapped + 120
    mail = None
    while time.monotonic() < deadline and mail is None:
        for candidate in smtp.mails[before:]:
            if label in candidate.subject and "CRITICAL" in candidate.subject:
                mail = candidate
                break
        await asyncio.sleep(0.05)
    if mail is None:
        result.add("latency: cert swap -> alarm email", "no email within 120 s", "latency_seconds", None)
        return
    total = mail.at - swapped
    observed = await stack.conn.fetchval(
        "SELECT min((evaluation->>'observed_at')::timestamptz) FROM reporter.evaluations "
        "WHERE target_key = $1 AND level = 'critical' AND evaluated_at > to_timestamp($2)",
        label,
        swapped_wall,
    )
    result.add(
        f"latency: cert swap -> alarm email (interval {CANARY_INTERVAL} s)", f"{total:.2f} s", "latency_seconds", total
    )
    if observed is not None:
        pipeline = time.time() - observed.timestamp() - (time.monotonic() - mail.at)
        result.add("  of which observation -> email", f"{pipeline:.2f} s", "latency_pipeline_seconds", pipeline)
        result.add("  subject", mail.subject[:90])


def _sample_rss(pid: int, peak: list[int]) -> None:
    """The child's peak RSS, sampled every 50 ms (wait4's ru_maxrss counts the parent's pages it was forked with)."""
    import psutil  # type: ignore[import-untyped]

    try:
        process = psutil.Process(pid)
        while process.status() != psutil.STATUS_ZOMBIE:
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)
    except psutil.Error:
        return


def run_check(result: PhaseResult, config: Path, args: list[str], expected: int, workdir: Path) -> float:
    """`certmon check --json` over the estate in one process: wall time, rate, CPU and peak RSS (wait4)."""
    out_path = workdir / f"check-{result.name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTMON_")}
    start = time.monotonic()
    with out_path.open("wb") as out:
        child = subprocess.Popen(
            [str(infra.CERTMON), "check", "--json", "--config", str(config), *args],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            cwd=workdir,
        )
        assert child.stderr is not None
        peak = [0]
        sampling = threading.Thread(target=_sample_rss, args=(child.pid, peak), daemon=True)
        sampling.start()
        err = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        sampling.join(timeout=2)
    seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    try:
        evaluations = json.loads(out_path.read_text())
    except ValueError as exc:
        raise RuntimeError(f"certmon check exited {code} without JSON: {err.decode()[-2000:]}") from exc
    if isinstance(evaluations, dict):
        evaluations = [evaluations]
    count = len(evaluations)
    reachable = sum(1 for e in evaluations if e.get("reachable"))
    levels: dict[str, int] = {}
    for evaluation in evaluations:
        level = (evaluation.get("alarm") or {}).get("level", "?")
        levels[level] = levels.get(level, 0) + 1
    out_path.unlink()
    rate = count / seconds
    cpu = usage.ru_utime + usage.ru_stime
    result.add(
        "check --json: obs/s (whole process)",
        f"{rate:,.0f} ({count:,} in {seconds:.1f} s, {reachable:,} reachable)",
        "check_rate",
        rate,
    )
    result.add(
        "  check CPU / peak RSS",
        f"{cpu / seconds:.0%} of a core, {peak[0] / 2**20:.0f} MiB; levels {levels}",
    )
    if count != expected:
        result.add("  check evaluations", f"{count} (expected {expected})")
    return rate


# --- phases ------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    workdir: Path
    estate: Estate
    roots: list[Any]
    smtp: infra.SmtpSink
    nginx: infra.Nginx | None
    blackholes: infra.Blackholes | None
    cleanup: Cleanup


async def pipeline_phase(
    ctx: Context,
    name: str,
    targets: list[dict[str, Any]],
    expected: int,
    *,
    steady: bool,
    check_args: list[str] | None,
    extra: str | None = None,
    reachable_where: str = "",
) -> PhaseResult:
    args = ctx.args
    result = PhaseResult(name, len(targets))
    long_config = ctx.workdir / f"{name}-first.yaml"
    write_config(
        long_config, ctx.estate, targets, interval="1h", smtp_port=ctx.smtp.port, per_host=args.per_host_concurrency
    )
    stack = Stack(name, ctx.workdir, long_config)
    result.add("code (services start from this checkout)", git_head(), "git_head", git_head())
    ctx.cleanup.push(f"stack {name}", stack.cleanup.run)  # if the phase's own teardown never ran
    sampler: Sampler | None = None
    try:
        log(f"phase {name}: {len(targets):,} targets; starting vhost, database and services")
        await stack.up()
        sampler = Sampler(stack.groups(ctx.nginx), period=1.0)
        sampler.start()
        log(f"phase {name}: services ready; first scan (scanners start now)")
        await first_scan(stack, result, expected, sampler, where=reachable_where, within=args.timeout)
        log(f"phase {name}: first scan done: {result.data['first_rate']:,.0f} obs/s")
        if reachable_where:  # the blackhole phase: also time the others (timeouts) to the end
            total = len(targets)
            t0 = time.monotonic()
            await wait_until(lambda: _ge(stack.latest_count(), total), "every target", within=args.timeout, poll=0.5)
            result.add("  every target incl. blackholed, after that", f"{time.monotonic() - t0:.1f} s more")
        if steady:
            steady_config = ctx.workdir / f"{name}-steady.yaml"
            steady_targets = [dict(t) for t in targets]
            if extra == "canary":
                for target in steady_targets:
                    if target.get("port") == ctx.estate.canary_port:
                        target["interval"] = f"{CANARY_INTERVAL}s"
            write_config(
                steady_config,
                ctx.estate,
                steady_targets,
                interval=f"{args.interval}s",
                smtp_port=ctx.smtp.port,
                per_host=args.per_host_concurrency,
            )
            await stack.restart_scanners(steady_config)
            await steady_state(
                stack,
                result,
                len(targets),
                sampler,
                interval=args.interval,
                seconds=args.steady,
                settle=args.interval * 1.1,
            )
            log(f"phase {name}: steady state {result.data['steady_rate']:,.0f} obs/s")
            if extra == "backpressure" and args.pause > 0:
                relaxed = max(args.interval, int(2 * len(targets) / max(result.data["steady_rate"], 1.0)))
                relaxed_config = ctx.workdir / f"{name}-relaxed.yaml"
                write_config(
                    relaxed_config,
                    ctx.estate,
                    targets,
                    interval=f"{relaxed}s",
                    smtp_port=ctx.smtp.port,
                    per_host=args.per_host_concurrency,
                )
                await stack.restart_scanners(relaxed_config)
                await backpressure(stack, result, sampler, pause=args.pause, relaxed=relaxed)
            if extra == "canary" and ctx.nginx is not None:
                await canary_latency(stack, result, ctx.estate, ctx.nginx, ctx.smtp, ctx.roots)
        failed = {s.name: s.process.returncode for s in stack.services.values() if s.process.poll() is not None}
        if failed:
            result.add("services that exited", str(failed))
    except Exception as exc:  # report what was measured, and go on with the next phase
        result.add("PHASE FAILED", str(exc)[:2000], "error", str(exc))
        log(f"phase {name} failed: {exc}")
    finally:
        if sampler is not None:
            sampler.stop()
        log(f"phase {name}: stopping services, dropping vhost and database")
        await stack.down()
    if check_args is not None:
        log(f"phase {name}: certmon check --json over the same estate")
        check_config = ctx.workdir / f"{name}-check.yaml"
        write_config(
            check_config, ctx.estate, [], interval="1h", smtp_port=ctx.smtp.port, per_host=args.per_host_concurrency
        )
        check_rate = await asyncio.to_thread(run_check, result, check_config, check_args, expected, ctx.workdir)
        if "first_rate" not in result.data:
            return result
        ratio = result.data["first_rate"] / check_rate
        result.add("pipeline first scan / check", f"{ratio:.0%}", "ratio_first", ratio)
        if "steady_rate" in result.data:
            steady_ratio = result.data["steady_rate"] / check_rate
            result.add("pipeline steady / check", f"{steady_ratio:.0%}", "ratio_steady", steady_ratio)
    return result


def git_head() -> str:
    """The commit the services run (others commit to this checkout meanwhile; `+dirty` if services/ or shared/
    have uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=infra.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "services", "shared"], cwd=infra.ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


async def _ge(count: Any, total: int) -> bool:
    return bool(await count >= total)


def build_estate(args: argparse.Namespace, workdir: Path) -> tuple[Estate, list[Any]]:
    started = time.monotonic()
    roots = pki.make_roots(3)
    roots_pem = workdir / "roots.pem"
    pki.write_roots(roots, roots_pem)
    factory = pki.LeafFactory()
    file_dir = workdir / "files"
    files = pki.write_file_estate(factory, roots, file_dir, args.files, warning_every=args.warning_every)
    key_path = workdir / "endpoint.key"
    key_path.write_bytes(factory.key_pem)
    key_path.chmod(0o600)
    blackhole_count = max(1, args.endpoints // 10) if "blackhole" in args.phases else 0
    ports = infra.free_ports(args.endpoints + 1 + blackhole_count)
    endpoint_ports, canary_port, blackhole_ports = (
        ports[: args.endpoints],
        ports[args.endpoints],
        ports[-blackhole_count:],
    )
    if not blackhole_count:
        blackhole_ports = []
    cert_dir = workdir / "endpoints"
    cert_dir.mkdir()
    for index, port in enumerate(endpoint_ports):
        (cert_dir / f"ep-{port}.pem").write_bytes(
            factory.leaf(roots[index % len(roots)], f"ep-{index}.bench.test", days=365, ip=HOST)
        )
    canary_cert = cert_dir / "canary.pem"
    canary_cert.write_bytes(factory.leaf(roots[0], "canary.bench.test", days=365, ip=HOST))
    log(
        f"estate: {args.files:,} certificate files, {args.endpoints} endpoint certificates, 3 roots "
        f"({time.monotonic() - started:.1f} s)"
    )
    estate = Estate(roots_pem, file_dir, files, endpoint_ports, canary_port, canary_cert, key_path, blackhole_ports)
    return estate, roots


async def main_async(args: argparse.Namespace, cleanup: Cleanup) -> list[PhaseResult]:
    workdir = Path(tempfile.mkdtemp(prefix="certmon-pipeline-"))
    if not args.keep:
        cleanup.push("temp dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    log(f"work dir {workdir}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    estate, roots = build_estate(args, workdir)
    smtp = infra.SmtpSink(infra.free_ports(1)[0])
    smtp.start(cleanup)
    nginx = None
    if {"endpoints", "blackhole"} & set(args.phases):
        blocks = {port: (workdir / "endpoints" / f"ep-{port}.pem", estate.key_path) for port in estate.endpoint_ports}
        blocks[estate.canary_port] = (estate.canary_cert, estate.key_path)
        nginx = infra.Nginx(workdir / "nginx", blocks, workers=args.nginx_workers)
        nginx.prefix.mkdir()
        nginx.start(cleanup)
        log(f"nginx: {len(blocks)} TLS server blocks on 127.0.0.1, {args.nginx_workers} worker(s)")
    blackholes = None
    if "blackhole" in args.phases:
        blackholes = infra.Blackholes(estate.blackhole_ports)
        blackholes.start(cleanup)
    ctx = Context(args, workdir, estate, roots, smtp, nginx, blackholes, cleanup)
    results = []
    for phase in args.phases:
        if phase == "files":
            results.append(
                await pipeline_phase(
                    ctx,
                    "files",
                    file_targets(estate),
                    len(estate.file_paths),
                    steady=True,
                    check_args=["--file", str(estate.file_dir)],
                    extra="backpressure",
                )
            )
        elif phase == "endpoints":
            targets = [*endpoint_targets(estate), {"host": HOST, "port": estate.canary_port}]
            results.append(
                await pipeline_phase(
                    ctx,
                    "endpoints",
                    targets,
                    len(targets),
                    steady=True,
                    check_args=[f"{HOST}:{t['port']}" for t in targets],
                    extra="canary",
                )
            )
        elif phase == "blackhole":
            reachable = endpoint_targets(estate)
            dark = [{"host": HOST, "port": port} for port in estate.blackhole_ports]
            results.append(
                await pipeline_phase(
                    ctx,
                    "blackhole",
                    [*reachable, *dark],
                    len(reachable),
                    steady=False,
                    check_args=None,
                    reachable_where="WHERE reachable",
                )
            )
        elif phase == "soak":
            from benchmarks.pipeline.soak import soak_phase  # it builds on this module

            results.append(await soak_phase(ctx))
        print_result(results[-1])
    return results


def print_result(result: PhaseResult) -> None:
    width = max(len(label) for label, _ in result.rows) + 2
    print()
    print(f"== phase {result.name} ({result.targets:,} targets) ==")
    for label, value in result.rows:
        print(f"{label:<{width}}{value}")
    print(flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=None, help="certificate-file targets (default 20000)")
    parser.add_argument("--endpoints", type=int, default=None, help="nginx TLS endpoints (default 300)")
    parser.add_argument("--interval", type=int, default=None, help="steady-state scan interval, seconds (default 60)")
    parser.add_argument("--steady", type=float, default=None, help="steady-state window, seconds (default 120)")
    parser.add_argument("--pause", type=float, default=None, help="alarmer SIGSTOP, seconds (default 60; 0: skip)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a ~2-3 minute run")
    parser.add_argument("--phases", default="files,endpoints,blackhole", help="comma-separated subset, in order")
    parser.add_argument("--warning-every", type=int, default=100, help="every Nth file expires in 20 days")
    parser.add_argument("--per-host-concurrency", type=int, default=64, help="scanning.per_host_concurrency")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a first scan after this long")
    parser.add_argument("--soak-minutes", type=float, default=120, help="soak phase: how long to sample")
    parser.add_argument("--soak-interval", type=int, default=3600, help="soak phase: scan interval, seconds")
    parser.add_argument("--sample-every", type=float, default=60, help="soak phase: seconds between samples")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) afterwards")
    args = parser.parse_args(argv)
    quick = {"files": 2000, "endpoints": 60, "interval": 20, "steady": 30.0, "pause": 15.0}
    full = {"files": 20000, "endpoints": 300, "interval": 60, "steady": 120.0, "pause": 60.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - {"files", "endpoints", "blackhole", "soak"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cleanup = Cleanup()

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    load_before = os.getloadavg()
    code = 0
    try:
        results = asyncio.run(main_async(args, cleanup))
        print(
            f"machine: {os.cpu_count()} CPUs; load average at start {load_before[0]:.2f}, at end "
            f"{os.getloadavg()[0]:.2f}"
        )
        if args.json_out:
            args.json_out.write_text(
                json.dumps([{"phase": r.name, "targets": r.targets, **r.data} for r in results], indent=2, default=str)
            )
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        cleanup.run()
    sys.exit(code)
