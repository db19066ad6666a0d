"""A service process answers `/healthz/live` from its first moment: before the broker and the database answer
it is alive and unready; the reporter's dashboard, API and readiness (which asks the broker) join the same port
once it has started."""

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from services import START_ORDER
from services.commands.run import run
from shared.config import parse_config
from shared.settings import Settings
from tests.support.pipeline import free_port

CERTMON = [sys.executable, "-m", "services.cli"]
RUN_SECONDS = 10.0


async def get(port: int, path: str, *, timeout: float = 3) -> httpx.Response | None:
    """GET `path` on the local `port`; None while nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.get(f"http://127.0.0.1:{port}{path}")
    except httpx.TransportError:
        return None


async def until(port: int, path: str, status: int, seconds: float = 30) -> httpx.Response:
    """Poll `path` until it answers `status`."""
    async with asyncio.timeout(seconds):
        while True:
            response = await get(port, path)
            if response is not None and response.status_code == status:
                return response
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("service", START_ORDER)
async def test_a_service_waiting_for_the_broker_is_alive_and_unready(service: str) -> None:
    """`certmon <service>` with no broker nor database answering serves live 200, ready 503 and its metrics."""
    port, closed = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CERTMON_")},
        "CERTMON_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{closed}/",
        "CERTMON_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/none",
        "CERTMON_HTTP_PORT": str(port),
        "CERTMON_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        *CERTMON, service, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await until(port, "/healthz/live", 200)
        ready = await until(port, "/healthz/ready", 503)
        assert ready.json()["status"] == "unavailable"
        metrics = await get(port, "/metrics")
        assert metrics is not None and "certmon_loop_up" in metrics.text
    finally:
        process.terminate()
        async with asyncio.timeout(30):
            await process.wait()


async def test_the_reporter_serves_health_first_then_its_dashboard_on_the_same_port(
    database_url: str, tmp_path: Path
) -> None:
    """`certmon reporter` answers live at once; a request for its API made while it starts is held until the
    reporter serves it (401: it asks for a token); its readiness checks the broker and the database, and its
    metrics include its own families."""
    port = free_port()
    settings = Settings(
        database_url=database_url,
        http_port=port,
        reports_url=f"{tmp_path}/reports",
        api_tokens=["secret-read-token"],
    )
    # The in-memory bus stands in for RabbitMQ (whose default names other tests may be using); it stops by itself.
    task = asyncio.create_task(run(settings, parse_config({}), ("reporter",), demo=False, exit_after=RUN_SECONDS))
    try:
        await until(port, "/healthz/live", 200)
        early = await get(port, "/api/v1/certificates", timeout=30)  # held until the reporter has started
        assert early is not None and early.status_code == 401
        ready = await until(port, "/healthz/ready", 200)
        assert {"broker", "database"} <= set(ready.json()["checks"])
        assert all(answer == "ok" for answer in ready.json()["checks"].values())
        metrics = await get(port, "/metrics")
        assert metrics is not None and "certmon_reports_published_total" in metrics.text
    finally:
        async with asyncio.timeout(RUN_SECONDS + 30):
            await task
    assert await get(port, "/healthz/live") is None  # the port is closed once the process stopped
