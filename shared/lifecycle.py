"""Running services: start in order, stop in reverse, and live until SIGINT/SIGTERM.

Used by `certmon run` (all five on one bus), `certmon <service>` and each service's `python -m` entry point,
so every way of starting certmon shuts down the same way: on the signal the process answers not ready, stops its
services (their loops, then a last publish of their outboxes), closes the bus (its consumers are cancelled and the
handlers in flight finish, so their acks go out), the pool and the HTTP server, and exits 0, all within
`CERTMON_DRAIN_SECONDS` (`Drain`).
"""

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import asyncpg
import structlog
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.health import Readiness, database_probe, health_app, readiness
from shared.http_server import HttpServer
from shared.runtime import CONNECT_BACKOFF, Infrastructure, StartAborted, finish_by, infrastructure
from shared.service import Service
from shared.settings import Settings
from shared.transient import is_transient

log = structlog.get_logger(__name__)

ServiceBuilder = Callable[..., Service]

#: How long a request for a service's own app (the dashboard) is held while the process starts.
APP_WAIT_SECONDS = 60.0
#: Of `CERTMON_DRAIN_SECONDS`, what stopping keeps for the HTTP server to close and the interpreter to exit.
EXIT_SECONDS = 1.0
_PROBES = frozenset({"/healthz/live", "/healthz/ready", "/metrics"})


async def start_all(services: Sequence[Service]) -> None:
    """Start each service in order; if one fails, stop those already started and re-raise."""
    started: list[Service] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            log.info("service_started", service=service.name)
    except BaseException:
        await stop_all(started)
        raise


async def stop_all(services: Sequence[Service], *, by: float | None = None) -> None:
    """Stop services in reverse order, each by the event loop time `by` (None: however long it takes; past it, a
    stop is cancelled, see `Drain`); one failing to stop does not keep the others running."""
    for service in reversed(services):
        try:
            stopped = await finish_by(by, f"{service.name} stop", service.stop())
        except Exception as exc:  # shutting down regardless: report and go on to the next
            log.error("service_stop_failed", service=service.name, error=repr(exc))
        else:
            if stopped:
                log.info("service_stopped", service=service.name)


class Drain:
    """When a stopping process must be done: `CERTMON_DRAIN_SECONDS` after the signal, less `EXIT_SECONDS`.

    First the bus stops consuming (`Bus.stop_consuming`): no new message arrives, and the handlers in flight get
    until `consumers_by`, halfway, to finish and acknowledge. Then the services stop (loops, a last outbox flush,
    which no handler chases any more) and the bus and the pool close, each by `deadline`; what a step has not
    finished by then is cancelled, and stays safe: a message whose handler did not finish is never acknowledged, so
    the broker puts it back in its queue, and an outbox row not yet published waits for the next relay (another
    replica's, or this service's next start). Kubernetes kills a pod that outlasts its
    `terminationGracePeriodSeconds`, so the drain is kept below that (deploy/k8s).
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        # Event loop times; None until the drain begins.
        self.consumers_by: float | None = None
        self.deadline: float | None = None

    def begin(self) -> None:
        """Start counting (the signal came)."""
        now, seconds = asyncio.get_running_loop().time(), self._seconds - EXIT_SECONDS
        self.consumers_by, self.deadline = now + seconds / 2, now + seconds
        log.info("draining", within_seconds=self._seconds)

    def left(self, until: float | None = None) -> float | None:
        """Seconds until `until` (default: `deadline`; 0 once past it; None before the drain begins)."""
        until = self.deadline if until is None else until
        if until is None:
            return None
        return max(0.0, until - asyncio.get_running_loop().time())


class ShutdownSignal:
    """SIGINT/SIGTERM (Kubernetes stops pods with SIGTERM) set an event instead of killing the process.

    Enter it before starting anything, so a signal that arrives during start-up is not lost: `wait` then
    returns at once and the services stop cleanly.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> "ShutdownSignal":
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # platforms without loop signal handlers
                loop.add_signal_handler(sig, self._event.set)
                self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    @property
    def event(self) -> asyncio.Event:
        """Set once a signal came (what waiting for a dependency gives up on)."""
        return self._event

    def is_set(self) -> bool:
        """Whether a signal came."""
        return self._event.is_set()

    async def wait(self, exit_after: float | None = None) -> None:
        """Return once a signal came, or after `exit_after` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(exit_after):
                await self._event.wait()


def build(
    builders: Sequence[ServiceBuilder],
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
) -> list[Service]:
    """Call each service's `bootstrap` with the same infrastructure."""
    return [builder(settings, config, bus=bus, pool=pool, clock=clock) for builder in builders]


@runtime_checkable
class ServesHttp(Protocol):
    """A service with an HTTP app of its own (the reporter's dashboard and API, with its own health routes), which
    the process serves on its one port once the service has started."""

    app: ASGIApp


class _Front:
    """The app on the process's port: the health app until a started service's app is mounted, then that app.

    So `/healthz/live` answers from the process's first moment, before the broker and the database do, and the
    reporter's dashboard appears on the same port once it can serve it. Meanwhile (with `waits`) a request for
    anything but health and metrics waits for it, up to `APP_WAIT_SECONDS`, then gets 503: a browser opened on a
    starting reporter sees the dashboard a little later rather than a 404."""

    def __init__(self, health: ASGIApp, *, waits: bool) -> None:
        self._health, self._waits = health, waits
        self._mounted: ASGIApp | None = None
        self._changed = asyncio.Event()
        self._closing = False

    def mount(self, app: ASGIApp | None) -> None:
        """Serve `app` from now on (None: the health app again, while the services stop or restart)."""
        self._mounted = app
        if app is None:
            self._changed.clear()
        else:
            self._changed.set()

    def close(self) -> None:
        """Stop holding requests (the server is about to stop)."""
        self._closing = True
        self._changed.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._mounted is None and self._waits and scope["type"] == "http" and scope["path"] not in _PROBES:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(APP_WAIT_SECONDS):
                    while self._mounted is None and not self._closing:
                        await self._changed.wait()
            if self._mounted is None:
                starting = PlainTextResponse("certmon is starting\n", status_code=503, headers={"Retry-After": "5"})
                await starting(scope, receive, send)
                return
        await (self._mounted or self._health)(scope, receive, send)


@dataclass
class _Process:
    """What this process's readiness probe looks at; it changes as the process (re)connects and starts."""

    bus: Bus | None = None
    database: Callable[[], Awaitable[object]] | None = None
    started: bool = False
    stopping: bool = False

    async def readiness(self) -> Readiness:
        if self.stopping:  # from the signal on, so that Kubernetes routes nothing more here
            return Readiness(status="unavailable", checks={"services": "stopping"})
        if self.bus is None:
            return Readiness(status="unavailable", checks={"services": "connecting"})
        return await readiness(self.bus, self.database, started=self.started)


async def serve(
    builders: Sequence[ServiceBuilder],
    settings: Settings,
    config: CertmonConfig,
    shutdown: ShutdownSignal,
    *,
    allow_embedded: bool,
    needs_database: bool,
    health_server: bool,
    serves_app: bool = False,
    exit_after: float | None = None,
    on_started: Callable[[Infrastructure, list[Service]], None] | None = None,
) -> None:
    """Run services until shutdown: wait for the broker and the database, start, serve, stop.

    A start that fails because a dependency went away again is retried from the connection on (nothing of the
    failed attempt stays subscribed: its bus is closed). Shutdown drains within `settings.drain_seconds` (`Drain`).
    With `health_server`, `/healthz/*` and `/metrics` are served on `CERTMON_HTTP_PORT` from the beginning, unready
    until the services have started and again from the signal on; a service with an app of its own (`ServesHttp`:
    the reporter, built not to bind a port itself) is served there once started, requests for it held meanwhile
    when `serves_app` says one will come.
    """
    process = _Process()
    drain = Drain(settings.drain_seconds)
    front = _Front(health_app(process.readiness), waits=serves_app)
    http = HttpServer(front, settings.http_host, settings.http_port) if health_server else None
    if http is not None:
        await http.start()
    failures = 0
    try:
        while not shutdown.is_set():
            try:
                async with infrastructure(
                    settings,
                    allow_embedded=allow_embedded,
                    needs_database=needs_database,
                    give_up=shutdown.event,
                    close_by=lambda: drain.deadline,
                ) as infra:
                    process.bus = infra.bus
                    process.database = database_probe(infra.pool) if infra.pool is not None else None
                    services = build(builders, settings, config, bus=infra.bus, pool=infra.pool)
                    await start_all(services)
                    process.started = True
                    front.mount(next((s.app for s in services if isinstance(s, ServesHttp)), None))
                    try:
                        if on_started is not None:
                            on_started(infra, services)
                        await shutdown.wait(exit_after)
                        process.stopping = True
                        drain.begin()
                        return
                    finally:
                        process.started = False
                        front.mount(None)  # unready (and the dashboard held) while the services stop
                        if drain.consumers_by is not None:  # draining: handlers in flight finish, none starts
                            await infra.bus.stop_consuming(within=drain.left(drain.consumers_by))
                        await stop_all(services, by=drain.deadline)
            except StartAborted:
                return
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                delay = CONNECT_BACKOFF.delay(failures)
                log.warning(
                    "service_start_failed",
                    error_type=type(exc).__name__,
                    error=str(exc)[:500],
                    attempt=failures,
                    retry_in_seconds=round(delay, 2),
                )
                await shutdown.wait(delay)
    finally:
        front.close()
        if http is not None:
            await http.stop(within=drain.left())
