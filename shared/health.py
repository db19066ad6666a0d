"""Liveness, readiness and metrics of a process, the same for every service.

Live means the process and its event loop answer; it never asks a dependency, so a broker outage does not make
an orchestrator restart every pod. Ready means the services are started, the broker and the database each answer
within a short timeout, and no background loop has died (`shared.periodic.dead_loops`).
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain
from typing import Literal

import asyncpg
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY, generate_latest
from pydantic import BaseModel

from shared.broker import Bus
from shared.periodic import dead_loops

READY_TIMEOUT_SECONDS = 2.0
OK = "ok"
_METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Readiness(BaseModel):
    """The answer of `/healthz/ready`: each check is "ok" or the reason it is not."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


async def _answer(probe: Callable[[], Awaitable[object]], seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await probe()
    except Exception as exc:  # any failure of a probe is the reason the process is not ready
        return f"{type(exc).__name__}: {exc}"[:200]
    return OK


def database_probe(pool: asyncpg.Pool) -> Callable[[], Awaitable[object]]:
    """A probe that raises unless the pool's database answers `SELECT 1`."""

    async def select_one() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    return select_one


async def readiness(
    bus: Bus | None,
    database: Callable[[], Awaitable[object]] | None,
    *,
    started: bool = True,
    seconds: float = READY_TIMEOUT_SECONDS,
) -> Readiness:
    """Check what this process depends on (the bus, a database probe), concurrently, each within `seconds`."""
    checks: dict[str, str] = {"services": OK if started else "starting"}
    probes: dict[str, Callable[[], Awaitable[object]]] = {}
    if bus is not None:
        probes["broker"] = bus.ping
    if database is not None:
        probes["database"] = database
    answers = await asyncio.gather(*(_answer(probe, seconds) for probe in probes.values()))
    checks.update(zip(probes, answers, strict=True))
    dead = dead_loops()
    checks["loops"] = OK if not dead else "ended: " + ", ".join(dead)
    return Readiness(status="ready" if all(v == OK for v in checks.values()) else "unavailable", checks=checks)


def add_health_routes(
    app: FastAPI,
    probe: Callable[[], Awaitable[Readiness]],
    *,
    extra_metrics: Callable[[], Awaitable[Iterable[bytes]]] | None = None,
) -> None:
    """Serve `/healthz/live`, `/healthz/ready` (503 unless ready) and `/metrics` (the process's own metrics,
    then the chunks `extra_metrics` gives) on `app`, without authentication: probes and Prometheus scrape without
    secrets."""

    @app.get("/healthz/live")
    async def live() -> dict[str, str]:
        """The process answers (never checks dependencies)."""
        return {"status": "ok"}

    @app.get("/healthz/ready", response_model=Readiness)
    async def ready(response: Response) -> Readiness:
        """Ready when started, connected to the broker and the database, with every background loop running."""
        answer = await probe()
        if answer.status != "ready":
            response.status_code = 503
        return answer

    @app.get("/metrics", include_in_schema=False)
    async def metrics(only: Literal["process", "estate"] | None = None) -> Response:
        """Metrics in the Prometheus text format: the process's own, then the extra chunks (the reporter's estate);
        `?only=process` or `?only=estate` serves one of the two, so each can be scraped on its own interval."""
        own = generate_latest(REGISTRY) if only != "estate" else b""
        if extra_metrics is None or only == "process":
            return Response(own, media_type=_METRICS_TYPE)
        # The extra text can be hundreds of megabytes (the reporter's estate): streamed, the chunks read in worker
        # threads; it is ready before the response starts, so a failure is still a 500.
        return StreamingResponse(chain((own,), await extra_metrics()), media_type=_METRICS_TYPE)


def health_app(probe: Callable[[], Awaitable[Readiness]]) -> FastAPI:
    """The HTTP app of a process that serves nothing else (every service but the reporter)."""
    app = FastAPI(title="certmon", docs_url=None, redoc_url=None, openapi_url=None)
    add_health_routes(app, probe)
    return app
