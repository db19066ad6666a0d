"""Building the infrastructure a process runs on, from Settings: the bus and the database pool.

With `CERTMON_AMQP_URL` / `CERTMON_DATABASE_URL` set they are used; otherwise `certmon run` falls back to the
in-memory bus and an embedded PostgreSQL (the `pgserver` package) under `CERTMON_DATA_DIR`.
"""

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import structlog

from shared.broker import Bus, BusError, InMemoryBus
from shared.broker.amqp import AmqpBus
from shared.db import DatabaseError, create_pool
from shared.periodic import Backoff
from shared.settings import RuntimeConfigError, Settings

log = structlog.get_logger(__name__)


class StartAborted(Exception):
    """Shutdown was asked for while the process still waited for the broker or the database."""


#: Waiting for a dependency at start: retried quickly enough to be ready soon after it returns.
CONNECT_BACKOFF = Backoff(initial=0.5, maximum=5.0)

T = TypeVar("T")


async def _connect(what: str, connect: Callable[[], Awaitable[T]], give_up: asyncio.Event | None) -> T:
    """`connect()`, retried with backoff while it fails and `give_up` is not set; without `give_up`, one try."""
    failures = 0
    while True:
        try:
            return await connect()
        except (DatabaseError, BusError) as exc:
            if give_up is None:
                raise RuntimeConfigError(str(exc)) from exc
            failures += 1
            delay = CONNECT_BACKOFF.delay(failures)
            log.warning(
                "dependency_unavailable",
                dependency=what,
                attempt=failures,
                error=str(exc),
                retry_in_seconds=round(delay, 2),
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await give_up.wait()
            if give_up.is_set():
                raise StartAborted(f"stopped while waiting for {what}") from exc


async def finish_by(deadline: float | None, what: str, step: Coroutine[object, object, object]) -> bool:
    """Await `step` until the event loop's clock reads `deadline` (None: as long as it takes); past it, `step` is
    cancelled and `stop_timed_out` logged. Returns whether it finished."""
    limit = asyncio.timeout_at(deadline)
    try:
        async with limit:
            await step
    except TimeoutError:
        if not limit.expired():  # the step's own timeout, not ours
            raise
        log.warning("stop_timed_out", step=what)
        return False
    return True


def _no_limit() -> float | None:
    return None


@dataclass
class Infrastructure:
    """What the services of one process share."""

    bus: Bus
    pool: asyncpg.Pool | None
    embedded_bus: bool
    embedded_database: bool


def _start_embedded_postgres(data_dir: Path) -> Any:
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import; harmless here
        import pgserver  # imported here: only the embedded mode needs it

        return pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]


def _stop_embedded_postgres(server: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as above
        server.cleanup()


_NO_DATABASE = "CERTMON_DATABASE_URL must be set to run a single service"


@contextlib.asynccontextmanager
async def database(
    settings: Settings,
    *,
    allow_embedded: bool = True,
    give_up: asyncio.Event | None = None,
    close_by: Callable[[], float | None] = _no_limit,
) -> AsyncIterator[tuple[asyncpg.Pool, bool]]:
    """A pool on `CERTMON_DATABASE_URL`, else (with `allow_embedded`) on the embedded PostgreSQL in
    `CERTMON_DATA_DIR`, for the life of the block; yields the pool and whether the database is the embedded one.

    The embedded server is shared by the processes that use the same data directory (a `certmon report` beside
    a running `certmon run`) and stops when the last of them leaves. `give_up` and `close_by` as for
    `infrastructure`.
    """
    server: Any = None
    if settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
    elif allow_embedded:
        log.info("embedded_postgres_starting", data_dir=str(settings.data_dir))
        try:
            server = await asyncio.to_thread(_start_embedded_postgres, settings.data_dir)
        except Exception as exc:  # pgserver raises bare exceptions of several kinds on a failed initdb/start
            raise RuntimeConfigError(f"embedded PostgreSQL could not start in {settings.data_dir}: {exc}") from exc
        dsn = server.get_uri()
    else:
        raise RuntimeConfigError(_NO_DATABASE)
    try:
        pool = await _connect(
            "database", lambda: create_pool(dsn, command_timeout=settings.database_command_timeout), give_up
        )
        try:
            yield pool, server is not None
        finally:
            if not await finish_by(close_by(), "database pool", pool.close()):
                pool.terminate()  # connections a handler still holds: its transaction rolls back, its message returns
    finally:
        if server is not None:
            await asyncio.to_thread(_stop_embedded_postgres, server)


@contextlib.asynccontextmanager
async def infrastructure(
    settings: Settings,
    *,
    allow_embedded: bool = True,
    needs_database: bool = True,
    give_up: asyncio.Event | None = None,
    close_by: Callable[[], float | None] = _no_limit,
) -> AsyncIterator[Infrastructure]:
    """Open the bus and the pool (unless `needs_database` is False) for the life of the block, then close them.

    With `give_up`, a broker or database that does not answer is waited for, with backoff and a log line per
    attempt, until it does or `give_up` is set (then StartAborted); without it, the first failure is final.
    `close_by()`, asked as the block ends, is the event loop time by which closing must be done (None: no limit):
    a bus still waiting for handlers in flight then is left as it is, and the process exits without acknowledging
    their messages, which the broker puts back in their queues; a pool still lent out is terminated.
    """
    if needs_database and settings.database_url is None and not allow_embedded:
        raise RuntimeConfigError(_NO_DATABASE)
    if settings.amqp_url is None and not allow_embedded:
        raise RuntimeConfigError("CERTMON_AMQP_URL must be set to run a single service")
    async with contextlib.AsyncExitStack() as stack:
        pool: asyncpg.Pool | None = None
        embedded_database = False
        if needs_database:
            pool, embedded_database = await stack.enter_async_context(
                database(settings, allow_embedded=allow_embedded, give_up=give_up, close_by=close_by)
            )
        if settings.amqp_url is not None:
            bus: Bus = AmqpBus(
                settings.amqp_url.get_secret_value(),
                delivery_limit=settings.delivery_limit,
                queue_max_length=settings.queue_max_length,
            )
        else:
            bus = InMemoryBus(delivery_limit=settings.delivery_limit)
        try:
            await _connect("broker", bus.start, give_up)
            log.info("infrastructure_connected", broker=type(bus).__name__, database=pool is not None)
            yield Infrastructure(
                bus=bus, pool=pool, embedded_bus=settings.amqp_url is None, embedded_database=embedded_database
            )
        finally:
            await finish_by(close_by(), "broker", bus.close())
