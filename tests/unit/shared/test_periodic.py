"""The background loop behind every schedule and relay: it outlives any failure of a tick, backs off, and a loop
that ends anyway is reported, never silently absent."""

import asyncio

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared.periodic import Backoff, PeriodicTask, dead_loops

FAST = Backoff(initial=0.01, maximum=0.02)


class _Fatal(BaseException):
    """Not an Exception: what a loop cannot survive (like KeyboardInterrupt)."""


async def _until(condition: object, seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_any_exception_is_logged_with_its_type_counted_and_retried() -> None:
    """A tick that raises anything, not only an I/O error, is logged with the error's type and counted, and
    the loop goes on ticking."""
    calls: list[int] = []

    async def tick() -> None:
        calls.append(len(calls))
        if len(calls) in (2, 3):
            raise RuntimeError("channel closed while reconnecting")

    before = REGISTRY.get_sample_value("certmon_loop_errors_total", {"loop": "t-any", "error": "RuntimeError"}) or 0
    task = PeriodicTask("t-any", tick, interval=0.01, backoff=FAST)
    with capture_logs() as logs:
        await task.start()
        await _until(lambda: len(calls) >= 5)
        await task.stop()
    failed = [e for e in logs if e["event"] == "background_loop_failed"]
    assert [(e["loop"], e["error_type"], e["failures"]) for e in failed] == [
        ("t-any", "RuntimeError", 1),
        ("t-any", "RuntimeError", 2),
    ]
    assert [e["after_failures"] for e in logs if e["event"] == "background_loop_recovered"] == [2]
    after = REGISTRY.get_sample_value("certmon_loop_errors_total", {"loop": "t-any", "error": "RuntimeError"})
    assert after == before + 2


def test_backoff_grows_to_its_ceiling_with_jitter() -> None:
    """Each failure in a row waits longer, up to the ceiling, and never less than half of the step."""
    backoff = Backoff(initial=1, maximum=8)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = [backoff.delay(failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


async def test_a_failing_tick_waits_its_backoff_not_the_wake() -> None:
    """While backing off, a wake-up does not make the loop hammer a dependency that is away."""
    calls: list[float] = []

    async def tick() -> None:
        calls.append(asyncio.get_running_loop().time())
        raise ConnectionRefusedError("broker away")

    task = PeriodicTask("t-backoff", tick, interval=60, backoff=Backoff(initial=0.2, maximum=0.2))
    await task.start()
    for _ in range(20):
        task.wake()
        await asyncio.sleep(0.01)
    await task.stop()
    assert len(calls) <= 2


class _Overloaded(Exception):
    """A dependency refusing because it is busy, not away."""


async def test_errors_it_is_patient_with_back_off_past_the_interval() -> None:
    """After an error named in `patient_with` the backoff grows to its maximum; after any other error it stops at
    the interval (here the backoff's initial step, the larger of the two)."""
    errors = [_Overloaded, _Overloaded, _Overloaded, _Overloaded, RuntimeError, RuntimeError]

    async def tick() -> None:
        if errors:
            raise errors.pop(0)("refused")

    task = PeriodicTask(
        "t-patient", tick, interval=0.01, backoff=Backoff(initial=0.02, maximum=0.16), patient_with=(_Overloaded,)
    )
    with capture_logs() as logs:
        await task.start()
        await _until(lambda: not errors and task.failures == 0)
        await task.stop()
    delays = [(e["error_type"], e["retry_in_seconds"]) for e in logs if e["event"] == "background_loop_failed"]
    assert [kind for kind, _ in delays] == ["_Overloaded"] * 4 + ["RuntimeError"] * 2
    assert delays[3][1] >= 0.08  # half of the fourth step, 0.16
    assert all(delay <= 0.02 for _, delay in delays[4:])


async def test_wake_ticks_at_once() -> None:
    """`wake()` runs the next tick now instead of at the end of a long interval."""
    calls: list[int] = []

    async def tick() -> None:
        calls.append(1)

    task = PeriodicTask("t-wake", tick, interval=3600)
    await task.start()
    await _until(lambda: len(calls) == 1)
    task.wake()
    await _until(lambda: len(calls) == 2, seconds=1)
    await task.stop()


async def test_a_loop_that_dies_is_reported_and_listed_as_dead() -> None:
    """A loop ended by something it cannot survive is logged, shows 0 in `certmon_loop_up`, and is listed by
    `dead_loops()` (which makes the process unready) until it is stopped."""

    async def tick() -> None:
        raise _Fatal("boom")

    task = PeriodicTask("t-dies", tick, interval=0.01)
    with capture_logs() as logs:
        await task.start()
        await _until(lambda: not task.alive)
    assert "t-dies" in dead_loops()
    assert REGISTRY.get_sample_value("certmon_loop_up", {"loop": "t-dies"}) == 0
    died = [e for e in logs if e["event"] == "background_loop_died"]
    assert died and died[0]["error_type"] == "_Fatal"
    await task.stop()
    assert "t-dies" not in dead_loops()


async def test_stop_is_prompt_and_idempotent() -> None:
    """Stopping cancels a long sleep at once; stopping twice is harmless; a stopped loop is not dead."""

    async def tick() -> None:
        return None

    task = PeriodicTask("idle", tick, interval=3600)
    await task.start()
    assert task.alive and REGISTRY.get_sample_value("certmon_loop_up", {"loop": "idle"}) == 1
    async with asyncio.timeout(1):
        await task.stop()
        await task.stop()
    assert "idle" not in dead_loops()
