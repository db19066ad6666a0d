"""The alarmer alone over a large config: evaluations per second and CPU per evaluation.

    .venv/bin/python -m benchmarks.alarmer_throughput [--targets 20000] [--evaluations 2000] [--alarming 0.1]

Builds a certmon config of `--targets` certificate-file targets (as `benchmarks/pipeline` writes them, plus a
tag on every tenth entry, a few servers and certificate rules, so ownership and tags have work to do), creates
`certmon_bench_<random>` on the local PostgreSQL, bootstraps the alarmer on it with the in-memory bus, and feeds
`--evaluations` evaluated events of distinct targets spread over the config, in two rounds: the first evaluation
of each, then the same targets an hour later (the steady state). The `--alarming` share carries a warning finding,
which raises an alarm in the first round and changes nothing in the second; the rest are healthy. It reports the
bootstrap time (the config's index is built there) and per round: evaluations per second from the first publish
until every handler is done, this process's CPU per evaluation, the CPU per evaluation of the PostgreSQL backends
serving the alarmer's pool, and the statements the alarmer sent per evaluation (BEGIN, COMMIT, the pool's reset
on release and the outbox relay's included). The database is dropped afterwards. Not a test.
"""

import argparse
import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from benchmarks.pipeline.infra import Cleanup, create_database
from services.alarmer.bootstrap import bootstrap
from shared.broker import InMemoryBus
from shared.config import CertmonConfig, parse_config
from shared.db import create_pool
from shared.events import (
    AlarmSummary,
    CertificateInfo,
    CloudEvent,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    TargetRef,
    make_event,
)
from shared.settings import Settings

ALARMS_QUEUE = "bench.alarmer.alarms"
SERVERS = 8
WITHIN_30 = Finding(code="expiry.within_30_days", severity="warning", message="expires in 20 days", trigger="expiry")


def file_path(index: int) -> str:
    """The certificate file of target `index` (never read: the alarmer only resolves its key)."""
    return f"/srv/bench/certs/leaf-{index:06d}.pem"


def build_config(targets: int) -> CertmonConfig:
    """`targets` file targets: every tenth tagged, every fifth on a server, one in fifty with its own owner."""
    entries: list[dict[str, Any]] = []
    for index in range(targets):
        entry: dict[str, Any] = {"file": file_path(index)}
        if index % 10 == 0:
            entry["tags"] = ["pci"]
        if index % 5 == 0:
            entry["server"] = f"srv-{index % SERVERS}"
        if index % 50 == 0:
            entry["owner"] = "app-team"
        entries.append(entry)
    return parse_config(
        {
            "defaults": {"owner": "bench-team", "interval": "1h"},
            "owners": {"bench-team": {}, "app-team": {}, "pci-team": {}, "infra-team": {}},
            "servers": {f"srv-{n}": {"owner": "infra-team", "tags": ["dc1"]} for n in range(SERVERS)},
            "targets": entries,
            "certificates": [
                {"match": {"tag": "pci"}, "owner": "pci-team", "critical": True},
                {"match": {"san": "*.legacy.bench.test"}, "owner": "app-team"},
                {"match": {"subject": "CN=vip-*"}, "reminders": {"warning": "1d"}},
            ],
        }
    )


def evaluated_event(index: int, *, alarming: bool, now: datetime) -> CloudEvent:
    """The `certificate.evaluated.v1` of target `index`: healthy, or with a warning expiry finding."""
    certificate = CertificateInfo(
        fingerprint_sha256=f"{index:064x}",
        subject=f"CN=leaf-{index}.bench.test",
        issuer="CN=certmon bench root 0",
        serial=f"{index:x}",
        not_before=now - timedelta(days=70),
        not_after=now + timedelta(days=20 if alarming else 200),
        san=[f"leaf-{index}.bench.test"],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )
    evaluation = Evaluation(
        target=TargetRef(file=file_path(index), protocol="file"),
        target_key=f"file:{file_path(index)}",
        observed_at=now,
        evaluated_at=now,
        reachable=True,
        certificate=certificate,
        expiry=ExpiryInfo(
            days_remaining=20.0 if alarming else 200.0,
            status="expiring_soon" if alarming else "valid",
            renewal_window="urgent" if alarming else "plan",
        ),
        findings=[WITHIN_30] if alarming else [],
        alarm=AlarmSummary(level="warning", triggers=["expiry"]) if alarming else AlarmSummary(level="ok"),
    )
    return make_event("certificate.evaluated.v1", evaluation, source="certmon/evaluator")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


@dataclass
class Phase:
    """One round of evaluations, measured."""

    evaluations: int
    wall: float
    cpu: float
    postgres_cpu: float
    statements: int

    def rows(self) -> dict[str, float]:
        """The phase's figures, per second and per evaluation."""
        return {
            "evaluations/s": self.evaluations / self.wall,
            "alarmer CPU ms/evaluation": 1000 * self.cpu / self.evaluations,
            "PostgreSQL CPU ms/evaluation": 1000 * self.postgres_cpu / self.evaluations,
            "statements/evaluation": self.statements / self.evaluations,
        }


class Connections:
    """Every connection of a pool: counts the statements they send (asyncpg's query logger) and knows the
    PostgreSQL backends serving them, whose CPU is the database's work for the alarmer."""

    def __init__(self) -> None:
        self.statements = 0
        self.backends: list[int] = []

    def __call__(self, _record: Any) -> None:
        """One statement sent."""
        self.statements += 1

    async def attach(self, pool: asyncpg.Pool) -> None:
        """Count every pooled connection's statements from now on, and note its backend."""
        connections = [await pool.acquire() for _ in range(pool.get_max_size())]
        for conn in connections:
            self.backends.append(await conn.fetchval("SELECT pg_backend_pid()"))
            conn.add_query_logger(self)
        for conn in connections:
            await pool.release(conn)


async def feed(bus: InMemoryBus, events: list[CloudEvent], connections: Connections) -> Phase:
    """Publish `events` and wait until every handler is done; what it took."""
    connections.statements = 0
    cpu, pg_cpu, wall = time.process_time(), _cpu_seconds(connections.backends), time.perf_counter()
    for event in events:
        await bus.publish(event)
    await bus.drain(within=3600)
    wall = time.perf_counter() - wall
    pg_cpu = _cpu_seconds(connections.backends) - pg_cpu
    return Phase(len(events), wall, time.process_time() - cpu, pg_cpu, connections.statements)


async def run(database_url: str, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Phase]]:
    """Bootstrap the alarmer over the config, feed each target's evaluation twice, and measure."""
    built = time.perf_counter()
    config = build_config(args.targets)
    parse_seconds = time.perf_counter() - built
    now = datetime.now(UTC)
    every = round(1 / args.alarming) if args.alarming > 0 else 0
    spread = args.targets // args.evaluations or 1  # evaluated targets spread over the whole config
    rounds = {
        name: [
            evaluated_event(i * spread % args.targets, alarming=bool(every) and i % every == 0, now=at)
            for i in range(args.evaluations)
        ]
        for name, at in (("first", now), ("again", now + timedelta(hours=1)))
    }
    pool = await create_pool(database_url, min_size=4, max_size=10)
    connections = Connections()
    bus = InMemoryBus()
    await bus.start()
    bus.declare(ALARMS_QUEUE, ["alarm.#"])
    started = time.perf_counter()
    service = bootstrap(Settings.model_construct(), config, bus=bus, pool=pool)
    bootstrap_seconds = time.perf_counter() - started
    await service.start()
    try:
        await connections.attach(pool)
        phases = {name: await feed(bus, events, connections) for name, events in rounds.items()}
        async with pool.acquire() as conn:
            raised = await conn.fetchval("SELECT count(*) FROM alarmer.alarms")
            processed = await conn.fetchval("SELECT count(*) FROM alarmer.processed_events")
    finally:
        await service.stop()
        await bus.close()
        await pool.close()
    if processed != 2 * args.evaluations:
        raise SystemExit(f"only {processed} of {2 * args.evaluations} evaluations were processed")
    setup = {"config parse s": parse_seconds, "bootstrap s": bootstrap_seconds, "alarms raised": float(raised)}
    return setup, phases


def main() -> None:
    """Parse the arguments, run once on a throwaway database, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--targets", type=int, default=20_000, help="configured file targets")
    parser.add_argument("--evaluations", type=int, default=2_000, help="evaluated events fed (distinct targets)")
    parser.add_argument("--alarming", type=float, default=0.1, help="share of evaluations that raise an alarm")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    cleanup = Cleanup()
    try:
        url = asyncio.run(create_database(f"certmon_bench_{secrets.token_hex(4)}", cleanup))
        setup, phases = asyncio.run(run(url, args))
    finally:
        cleanup.run()
    print(f"alarmer throughput: {args.targets} file targets, {args.evaluations} evaluations per round, "
          f"{args.alarming:.0%} alarming")  # fmt: skip
    for name, value in setup.items():
        print(f"  {name:<30}{value:>12.2f}")
    print(f"  {'':<30}{'first round':>12}{'again':>12}")
    rows = {name: phase.rows() for name, phase in phases.items()}
    for name in rows["first"]:
        print(f"  {name:<30}" + "".join(f"{rows[phase][name]:>12.2f}" for phase in rows))


if __name__ == "__main__":
    main()
