"""A background loop that calls a coroutine every few seconds until stopped.

The scanner's scheduler, its discovery sweeps and the reporter's daily schedule all tick this way: a tick that
fails with one of the expected (transient) errors is logged and retried on the next tick; anything else is a bug
and ends the loop loudly.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class PeriodicTask:
    """Runs `tick()` now and then every `interval` seconds; `transient` errors are logged and retried."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[object]],
        *,
        interval: float,
        transient: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        self.name, self._tick, self._interval, self._transient = name, tick, interval, transient
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start ticking in the background."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop ticking; a tick in progress is cancelled (its transaction, if any, rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except self._transient as exc:
                log.warning("periodic_tick_failed", task=self.name, error=str(exc), retry_in_seconds=self._interval)
            await asyncio.sleep(self._interval)
