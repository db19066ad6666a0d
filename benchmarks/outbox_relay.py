"""How fast the outbox relay drains a backlog into RabbitMQ, against publishing it one confirm at a time.

    .venv/bin/python -m benchmarks.outbox_relay [--rows 20000] [--rounds 3] [--sweep]

A fresh PostgreSQL database and RabbitMQ vhost (both removed at the end), one `AmqpBus` with publisher confirms,
and a durable quorum queue bound to `certificate.observed.v1` that nobody consumes (as a work queue of the
services is declared). Each round writes `--rows` observation events (two certificates of base64 DER each, the
size of a real chain) to a fresh outbox and times draining it two ways, alternately:

- **serial**: the relay as it was, a loop in this file: a transaction per 100 rows, each published with
  `await bus.publish` (the broker's confirm awaited before the next publish);
- **relay**: `OutboxRelay.flush()` as shipped (`shared.outbox.BATCH` rows per transaction, `IN_FLIGHT`
  publishes awaiting their confirm at once).

`--sweep` also times the relay with other batch sizes and windows (the module's constants set for the run), to
show why the shipped ones were picked. Figures are events per second with the share of a core this process used
meanwhile, and the ratio to the serial loop in the same round (the machine is shared: compare ratios, not absolute
rates).
"""

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import asyncpg

from benchmarks.pipeline.infra import Cleanup, create_database, create_vhost
from shared import outbox
from shared.broker import Bus
from shared.broker.amqp import AmqpBus
from shared.db import create_pool, migrate
from shared.events import CloudEvent, Observation, Target, make_event
from shared.outbox import OutboxRelay, enqueue_many

SCHEMA = "bench"
ROUTING_KEY = "certificate.observed.v1"
SERIAL_BATCH = 100  # what the relay took per transaction before


def observation(i: int) -> CloudEvent:
    """An observation event with a two-certificate chain (about 1.2 KB of DER each)."""
    chain = [base64.b64encode(secrets.token_bytes(1200)).decode() for _ in range(2)]
    payload = Observation(target=Target(host=f"h{i}.example"), observed_at=datetime.now(UTC), chain=chain)
    return make_event(ROUTING_KEY, payload, source="bench")


async def fill(pool: asyncpg.Pool, events: list[CloudEvent]) -> None:
    """Empty the outbox, then commit `events` to it, a transaction per thousand."""
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {SCHEMA}.outbox")
        for start in range(0, len(events), 1000):
            async with conn.transaction():
                await enqueue_many(conn, SCHEMA, events[start : start + 1000])
        await conn.execute(f"VACUUM ANALYZE {SCHEMA}.outbox")


async def serial_flush(pool: asyncpg.Pool, bus: Bus) -> int:
    """The baseline: publish every pending row one confirm at a time, a transaction per 100 rows."""
    published = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT seq, event FROM {SCHEMA}.outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE",
                SERIAL_BATCH,
            )
            if not rows:
                return published
            for row in rows:
                await bus.publish(CloudEvent.model_validate(row["event"]))
            await conn.execute(
                f"UPDATE {SCHEMA}.outbox SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [row["seq"] for row in rows],
            )
        published += len(rows)


async def rate(
    pool: asyncpg.Pool, events: list[CloudEvent], flush: Callable[[], Awaitable[int]]
) -> tuple[float, float]:
    """Events per second `flush` drains a fresh outbox of `events` at (checks it published them all), and the
    share of a core this process used meanwhile (near 1: the relay's own CPU bounds it)."""
    await fill(pool, events)
    started, cpu = time.perf_counter(), time.process_time()
    published = await flush()
    elapsed = time.perf_counter() - started
    if published != len(events):
        raise RuntimeError(f"published {published} of {len(events)}")
    return len(events) / elapsed, (time.process_time() - cpu) / elapsed


async def declare_queue(amqp_url: str, exchange: str) -> None:
    """A durable quorum queue bound to the events' routing key, as the services declare theirs (no consumer)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue("bench.work", durable=True, arguments={"x-queue-type": "quorum"})
        await queue.bind(exchange, ROUTING_KEY)
    finally:
        await connection.close()


async def run(args: argparse.Namespace, cleanup: Cleanup) -> None:
    """Set up the database and vhost, then time each round and print the table."""
    name = f"certmon_bench_outbox_{os.getpid()}"
    amqp_url = create_vhost(name, cleanup)
    database_url = await create_database(name, cleanup)
    pool = await create_pool(database_url, max_size=4)
    bus = AmqpBus(amqp_url)
    try:
        await migrate(pool, SCHEMA, [])
        await bus.start()
        await declare_queue(amqp_url, "certmon.events")
        events = [observation(i) for i in range(args.rows)]
        relay = OutboxRelay(pool, SCHEMA, bus)
        shipped = (outbox.BATCH, outbox.IN_FLIGHT)
        variants = [shipped]
        if args.sweep:
            variants += [(v, w) for v, w in ((500, 100), (1000, 250), (1000, 1000), (2000, 100)) if (v, w) != shipped]
        print(f"{args.rows} events of {len(events[0].model_dump_json())} bytes, {args.rounds} rounds")
        print("| round | serial events/s (CPU) | relay (batch, in flight) | relay events/s (CPU) | ratio |")
        print("|---|---|---|---|---|")
        ratios: dict[tuple[int, int], list[float]] = {v: [] for v in variants}
        for r in range(1, args.rounds + 1):
            serial, serial_cpu = await rate(pool, events, lambda: serial_flush(pool, bus))
            rotated = variants[r % len(variants) :] + variants[: r % len(variants)]  # the machine's load drifts
            for batch, in_flight in rotated:
                outbox.BATCH, outbox.IN_FLIGHT = batch, in_flight
                relayed, cpu = await rate(pool, events, relay.flush)
                ratios[(batch, in_flight)].append(relayed / serial)
                print(
                    f"| {r} | {serial:,.0f} ({serial_cpu:.0%}) | {batch}, {in_flight} | {relayed:,.0f} ({cpu:.0%}) "
                    f"| {relayed / serial:.1f}x |"
                )
            outbox.BATCH, outbox.IN_FLIGHT = shipped
        for (batch, in_flight), values in ratios.items():
            print(f"median ratio, batch {batch}, {in_flight} in flight: {statistics.median(values):.1f}x")
    finally:
        await bus.close()
        await pool.close()


def main() -> None:
    """Parse the arguments and run, removing the database and vhost whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="outbox rows per drain")
    parser.add_argument("--rounds", type=int, default=3, help="alternating serial/relay rounds")
    parser.add_argument("--sweep", action="store_true", help="also time other batch sizes and windows")
    args = parser.parse_args()
    cleanup = Cleanup()
    try:
        asyncio.run(run(args, cleanup))
    finally:
        cleanup.run()


if __name__ == "__main__":
    main()
