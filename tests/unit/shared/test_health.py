"""Readiness and liveness as every service answers them: the broker, the database, the services started, and no
background loop ended."""

import asyncio

import httpx

from shared.broker import InMemoryBus
from shared.health import health_app, readiness
from shared.periodic import PeriodicTask


class _Fatal(BaseException):
    """What a loop cannot survive."""


async def _answers() -> None:
    return None


async def _refuses() -> None:
    raise ConnectionRefusedError("database away")


async def _hangs() -> None:
    await asyncio.sleep(3600)


async def test_ready_when_started_with_the_bus_and_database_answering() -> None:
    """Everything answers: ready, each check "ok"."""
    bus = InMemoryBus()
    await bus.start()
    answer = await readiness(bus, _answers)
    assert answer.status == "ready"
    assert answer.checks == {"services": "ok", "broker": "ok", "database": "ok", "loops": "ok"}


async def test_unready_while_starting_or_a_dependency_is_away() -> None:
    """Not started yet, a closed bus, a refusing or a hanging database each make the process unready, with the
    reason; a hanging probe costs no more than its timeout."""
    bus = InMemoryBus()
    await bus.start()
    assert (await readiness(bus, _answers, started=False)).checks["services"] == "starting"
    refused = await readiness(bus, _refuses)
    assert refused.status == "unavailable"
    assert refused.checks["database"].startswith("ConnectionRefusedError")
    async with asyncio.timeout(2):
        hung = await readiness(bus, _hangs, seconds=0.1)
    assert hung.checks["database"].startswith("TimeoutError")
    await bus.close()
    assert (await readiness(bus, _answers)).checks["broker"].startswith("BusError")


async def test_a_dead_loop_makes_the_process_unready() -> None:
    """A background loop that ended is named in the readiness answer until it is stopped."""

    async def tick() -> None:
        raise _Fatal("gone")

    loop = PeriodicTask("health-test-loop", tick, interval=1)
    await loop.start()
    async with asyncio.timeout(2):
        while loop.alive:
            await asyncio.sleep(0.01)
    answer = await readiness(None, None)
    assert answer.status == "unavailable"
    assert "health-test-loop" in answer.checks["loops"]
    await loop.stop()
    assert (await readiness(None, None)).status == "ready"


async def test_health_app_answers_503_when_unready_and_serves_metrics() -> None:
    """`/healthz/ready` is 503 with the reasons when unready, `/healthz/live` always 200, `/metrics` the
    process's own metrics (the background loops among them)."""
    bus = InMemoryBus()
    await bus.start()
    state = {"started": False}

    async def probe():  # type: ignore[no-untyped-def]
        return await readiness(bus, _answers, started=state["started"])

    transport = httpx.ASGITransport(app=health_app(probe))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        unready = await client.get("/healthz/ready")
        assert unready.status_code == 503 and unready.json()["checks"]["services"] == "starting"
        assert (await client.get("/healthz/live")).status_code == 200
        state["started"] = True
        assert (await client.get("/healthz/ready")).status_code == 200
        assert "certmon_loop_up" in (await client.get("/metrics")).text
