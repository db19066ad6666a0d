"""Background loops that survive anything but cancellation.

Every loop a service runs in the background (outbox relays, the scanner's scheduler and discovery sweeps, the
reporter's report schedules) is a `PeriodicTask`: it calls a coroutine now and then every `interval` seconds.
A tick that raises, whatever the exception, is logged with its type, counted in
`certmon_loop_errors_total{loop,error}`, and tried again after an exponential backoff: a broker or database
that is away for a while must never end a loop silently. A loop whose task ends anyway (a `BaseException`
other than cancellation) is logged as `background_loop_died`, shows 0 in `certmon_loop_up{loop}`, and makes
the process unready (`dead_loops()`), so an orchestrator restarts it instead of it running on half-alive.
"""

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import Counter, Gauge

log = structlog.get_logger(__name__)

LOOP_ERRORS = Counter(
    "certmon_loop_errors", "Failed ticks of a background loop, by loop and error type.", ["loop", "error"]
)
LOOP_UP = Gauge("certmon_loop_up", "1 while a background loop runs, 0 once it has ended.", ["loop"])

#: The loops started and not stopped in this process. Like prometheus-client's default registry, one per process:
#: readiness must see every loop, including those of services composed into one process by `certmon run`.
_RUNNING: "set[PeriodicTask]" = set()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter (so replicas that failed together do not retry together)."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1-based)."""
        ceiling = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_BACKOFF = Backoff()


class PeriodicTask:
    """Runs `tick()` now and then every `interval` seconds (or as soon as `wake()` is called), until stopped."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[object]],
        *,
        interval: float,
        backoff: Backoff = DEFAULT_BACKOFF,
        patient_with: tuple[type[Exception], ...] = (),
    ) -> None:
        """`patient_with` names the errors after which the backoff grows to its maximum instead of stopping at the
        interval: a dependency that refuses because it is overloaded, not away, needs time rather than retries."""
        self.name, self._tick, self._interval, self._backoff = name, tick, interval, backoff
        self._patient_with = patient_with
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.failures = 0  # consecutive failed ticks

    @property
    def alive(self) -> bool:
        """Whether the loop is running (started, not stopped, and its task has not ended)."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Tick now instead of at the end of the interval (ignored while backing off after a failure)."""
        self._wake.set()

    async def start(self) -> None:
        """Start ticking in the background."""
        self._task = asyncio.create_task(self._run(), name=self.name)
        self._task.add_done_callback(self._ended)
        _RUNNING.add(self)
        LOOP_UP.labels(self.name).set(1)

    async def stop(self) -> None:
        """Stop ticking; a tick in progress is cancelled (its transaction, if any, rolls back)."""
        task, self._task = self._task, None
        _RUNNING.discard(self)
        if task is None:
            return
        if not task.done():
            task.remove_done_callback(self._ended)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A loop that died was logged by `_ended`; its exception is not raised again here.
        LOOP_UP.labels(self.name).set(0)

    def _ended(self, task: "asyncio.Task[None]") -> None:
        LOOP_UP.labels(self.name).set(0)
        if task.cancelled():  # cancelled by whoever tears the event loop down, not by a failure
            return
        exc = task.exception()
        log.error("background_loop_died", loop=self.name, error_type=type(exc).__name__, error=repr(exc))

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception as exc:  # a loop must outlive any failure of one tick; the next tick retries
                self.failures += 1
                delay = self._backoff.delay(self.failures)
                if not isinstance(exc, self._patient_with):
                    delay = min(delay, max(self._interval, self._backoff.initial))
                LOOP_ERRORS.labels(self.name, type(exc).__name__).inc()
                log.error(
                    "background_loop_failed",
                    loop=self.name,
                    error_type=type(exc).__name__,
                    error=str(exc)[:500],
                    failures=self.failures,
                    retry_in_seconds=round(delay, 2),
                )
                await asyncio.sleep(delay)
                self._wake.clear()
                continue
            if self.failures:
                log.info("background_loop_recovered", loop=self.name, after_failures=self.failures)
                self.failures = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()


def dead_loops() -> list[str]:
    """The names of started loops whose task ended without being stopped (the process is then not ready)."""
    return sorted(loop.name for loop in _RUNNING if not loop.alive)
