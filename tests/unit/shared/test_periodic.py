"""The periodic loop behind every schedule: transient failures are retried, the loop stops when asked."""

import asyncio

from structlog.testing import capture_logs

from shared.periodic import PeriodicTask


async def test_ticks_repeat_and_transient_errors_are_retried() -> None:
    """A tick that fails with a transient error is logged, and the next tick runs anyway."""
    calls: list[int] = []

    async def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise ConnectionResetError("database went away")

    task = PeriodicTask("test", tick, interval=0.01, transient=(OSError,))
    with capture_logs() as logs:
        await task.start()
        async with asyncio.timeout(5):
            while len(calls) < 4:
                await asyncio.sleep(0.01)
        await task.stop()
    assert [e["event"] for e in logs] == ["periodic_tick_failed"]
    assert logs[0]["task"] == "test"


async def test_stop_is_prompt_and_idempotent() -> None:
    """Stopping cancels a long sleep at once; stopping twice is harmless."""

    async def tick() -> None:
        return None

    task = PeriodicTask("idle", tick, interval=3600)
    await task.start()
    async with asyncio.timeout(1):
        await task.stop()
        await task.stop()
