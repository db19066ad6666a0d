"""The reporter's app over a seeded in-memory history, for the fuzz tests: an open, an acknowledged and a resolved
alarm and one evaluation per level, so that lookups by id, filters and pages meet real rows."""

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.reporter.adapters.bucket import LocalFolderBucket
from services.reporter.adapters.http import create_app
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.service_layer.acknowledging import Acknowledger
from shared.events.evaluation import Level
from tests.unit.reporter.reporter_app import LINKS, settings, store_alarms
from tests.unit.reporter.reporter_factories import NOW, evaluation

#: The hosts evaluated, with their levels; their fingerprints are `sha256(host)`.
HOSTS: dict[str, Level] = {"ok.example": "ok", "warn.example": "warning", "crit.example": "critical"}


async def _seed(history: InMemoryHistory) -> None:
    await store_alarms(history)
    for days, (host, level) in enumerate(HOSTS.items()):
        await history.record_evaluation(f"{host}-e", evaluation(host, days=days * 10 - 5, level=level, owner="ops"))


def seeded_app(bucket_root: Path) -> FastAPI:
    """The app with one read and one write token, its clock stopped at NOW, over a freshly seeded history and an
    empty bucket in `bucket_root`; an acknowledgement waits only briefly for the alarmer (none runs
    here), so most end 202."""
    history = InMemoryHistory()
    asyncio.run(_seed(history))
    acknowledger = Acknowledger(history, clock=lambda: NOW, wait_seconds=0.01, poll_seconds=0.005)
    return create_app(
        history,
        settings(),
        links=LINKS,
        acknowledger=acknowledger,
        clock=lambda: NOW,
        bucket=LocalFolderBucket(bucket_root),
    )
