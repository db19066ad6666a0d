"""The reporter's HTTP app on the in-memory history, for the unit tests of its API and pages."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from pydantic import SecretStr

from services.reporter.adapters.http import create_app
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.ports import Bucket
from services.reporter.service_layer.acknowledging import Acknowledger
from shared.action_links import AckLink, ActionLinkSigner
from shared.events import Acknowledgement, AcknowledgementRequested
from shared.settings import Settings
from tests.unit.reporter.reporter_factories import NOW, alarm

READ_TOKEN = "read-token-for-the-reporter-tests"
WRITE_TOKEN = "write-token-for-the-reporter-tests"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}
LINKS = ActionLinkSigner(b"link-key-for-the-reporter-tests")
#: How long the app waits for the alarmer's answer in these tests: long enough for a task to answer, short enough
#: that a test where nothing answers stays quick.
WAIT_SECONDS = 0.3

RAISED_AT = NOW - timedelta(hours=2)
JANE = Acknowledgement(by="jane@example.com", at=NOW - timedelta(minutes=10), comment="renewal ordered", via="api")


def settings(*, tokens: bool = True) -> Settings:
    """Settings with one read and one write token, or none of either."""
    if not tokens:
        return Settings(api_tokens=[], api_write_tokens=[])
    return Settings(api_tokens=[SecretStr(READ_TOKEN)], api_write_tokens=[SecretStr(WRITE_TOKEN)])


@asynccontextmanager
async def client_on(
    history: InMemoryHistory, *, tokens: bool = True, bucket: Bucket | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client on the app over `history` (and `bucket`, if given, for report objects), its clock
    stopped at NOW."""
    acknowledger = Acknowledger(history, clock=lambda: NOW, wait_seconds=WAIT_SECONDS, poll_seconds=0.01)
    app = create_app(
        history, settings(tokens=tokens), links=LINKS, acknowledger=acknowledger, clock=lambda: NOW, bucket=bucket
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporter", timeout=10) as client:
        yield client


async def store_alarms(history: InMemoryHistory) -> None:
    """Three alarms: `open1` open, `acked1` acknowledged by Jane, `gone1` resolved."""
    await history.record_alarm("open1-e1", alarm("open1", "raised", "critical", RAISED_AT, host="open.example"))
    await history.record_alarm("acked1-e1", alarm("acked1", "raised", "warning", RAISED_AT, host="acked.example"))
    await history.record_alarm(
        "acked1-e2",
        alarm("acked1", "acknowledged", "warning", JANE.at, host="acked.example", acknowledgement=JANE, cause=JANE.by),
    )
    await history.record_alarm("gone1-e1", alarm("gone1", "raised", "info", RAISED_AT, host="gone.example"))
    await history.record_alarm(
        "gone1-e2", alarm("gone1", "resolved", "ok", NOW - timedelta(hours=1), host="gone.example")
    )


def requests(history: InMemoryHistory) -> list[AcknowledgementRequested]:
    """The acknowledge requests the app enqueued, in order."""
    return [
        AcknowledgementRequested.model_validate(e.data)
        for e in history.outbox
        if e.routing_key == "acknowledgement.requested.v1"
    ]


def ack_token(alarm_id: str, *, recipient: str = "ops@example.com", expires_in: timedelta = timedelta(days=7)) -> str:
    """A signed acknowledge token for `alarm_id`, sent to `recipient`, expiring `expires_in` after NOW."""
    return LINKS.sign(AckLink(alarm_id, recipient, NOW + expires_in))


def answer_requests(history: InMemoryHistory) -> "asyncio.Task[None]":
    """Play the alarmer: once a request is enqueued, record the `acknowledged` transition it asks for."""

    async def alarmer() -> None:
        while not requests(history):
            await asyncio.sleep(0.005)
        [request] = requests(history)
        ack = Acknowledgement(by=request.by, at=NOW, comment=request.comment, via=request.via)
        event = alarm(request.alarm_id, "acknowledged", "critical", NOW, host="open.example", acknowledgement=ack)
        await history.record_alarm(f"{request.alarm_id}-acknowledged", event)

    return asyncio.create_task(alarmer())
