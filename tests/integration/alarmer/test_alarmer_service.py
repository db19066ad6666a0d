"""The alarmer end to end on real PostgreSQL and the in-memory bus: evaluated events in, alarm events out."""

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.alarmer.adapters import repository
from services.alarmer.bootstrap import AlarmerService, bootstrap
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.events import (
    AlarmEvent,
    AlarmSummary,
    CertificateInfo,
    CloudEvent,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    TargetRef,
    make_event,
)
from shared.events.evaluation import Severity, Trigger
from shared.events.observation import ObservationError
from shared.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALARMS_QUEUE = "test.alarmer.alarms"

CONFIG = parse_config(
    {
        "defaults": {"owner": "security-team", "unreachable_critical_after": 2},
        "channels": {"email": {"host": "smtp.example.com", "from": "certmon@example.com"}},
        "owners": {
            "security-team": {"email": ["secops@example.com"]},
            "platform-team": {"email": ["platform@example.com"]},
            "shop-team": {"email": ["alice@example.com", "bob@example.com"], "delivery": "individual"},
        },
        "servers": {"web-01": {"addresses": ["10.0.0.5"], "owner": "platform-team"}},
        "targets": [
            {"host": "www.shop.example.com", "port": 443, "server": "web-01"},
            {"host": "api.example.com", "port": 443, "server": "web-01"},
            {"host": "blog.example.com", "port": 443, "server": "web-01"},
            {"host": "intranet.example.com", "port": 443},
        ],
        "certificates": [
            {"match": {"san": "*.shop.example.com"}, "owner": "shop-team", "critical": True},
            {"match": {"san": "api.example.com"}, "owner": "shop-team"},
        ],
    }
)

WITHIN_30 = Finding(code="expiry.within_30_days", severity="warning", message="expires in 20 days", trigger="expiry")
WITHIN_7 = Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days", trigger="expiry")
_minutes = itertools.count()


def finding(code: str, severity: Severity, trigger: Trigger) -> Finding:
    """A finding as the evaluator reports it."""
    return Finding(code=code, severity=severity, message=code, trigger=trigger)


def evaluation(host: str, fingerprint: str = "a" * 64, *findings: Finding) -> Evaluation:
    """A reachable target's evaluation, observed a minute after the previous one built here."""
    at = NOW + timedelta(minutes=next(_minutes))
    certificate = CertificateInfo(
        fingerprint_sha256=fingerprint,
        subject=f"CN={host}",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - timedelta(days=70),
        not_after=NOW + timedelta(days=20),
        san=[host],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host, server="web-01" if host != "intranet.example.com" else None),
        target_key=f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=True,
        certificate=certificate,
        expiry=ExpiryInfo(days_remaining=20.0, status="expiring_soon", renewal_window="urgent"),
        findings=list(findings),
        alarm=AlarmSummary(level="ok"),
    )


def unreachable(host: str) -> Evaluation:
    """An evaluation of a target that refused the connection."""
    at = NOW + timedelta(minutes=next(_minutes))
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host),
        target_key=f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=False,
        error=ObservationError(kind="refused", message="connection refused"),
        findings=[finding("endpoint.unreachable", "warning", "reachability")],
        alarm=AlarmSummary(level="warning", triggers=["reachability"]),
    )


@dataclass
class Alarmer:
    """A running alarmer with the bus it listens on and a queue catching what it publishes."""

    bus: InMemoryBus
    service: AlarmerService
    pool: asyncpg.Pool

    async def feed(self, *evaluations: Evaluation | CloudEvent) -> list[CloudEvent]:
        """Publish evaluated events, wait until handled and relayed, and return the alarm events published."""
        before = len(self.bus.pending(ALARMS_QUEUE))
        for item in evaluations:
            event = (
                item
                if isinstance(item, CloudEvent)
                else make_event("certificate.evaluated.v1", item, source="certmon/evaluator")
            )
            await self.bus.publish(event)
        await self.bus.drain()
        await self.settle()
        return self.bus.pending(ALARMS_QUEUE)[before:]

    async def settle(self) -> None:
        """Wait until the outbox relay has published every committed row."""
        async with self.pool.acquire() as conn:
            for _ in range(500):
                if not await conn.fetchval("SELECT count(*) FROM alarmer.outbox WHERE published_at IS NULL"):
                    return
                self.service.outbox.kick()
                await asyncio.sleep(0.01)
        raise AssertionError("the outbox was not relayed")


@pytest.fixture
async def alarmer(pg_pool: asyncpg.Pool) -> AsyncIterator[Alarmer]:
    """The alarmer wired by its bootstrap on a fresh database and an in-memory bus."""
    bus = InMemoryBus(delivery_limit=2)  # a poison event is dead-lettered quickly
    await bus.start()
    bus.declare(ALARMS_QUEUE, ["alarm.#"])
    # Settings() warns under the installed pydantic-settings (secrets_dir_missing); the alarmer reads none of it.
    service = bootstrap(Settings.model_construct(), CONFIG, bus=bus, pool=pg_pool, clock=lambda: NOW)
    await service.start()
    try:
        yield Alarmer(bus, service, pg_pool)
    finally:
        await service.stop()
        await bus.close()


def payloads(events: list[CloudEvent]) -> list[AlarmEvent]:
    """The alarm payloads of published events."""
    return [AlarmEvent.model_validate(event.data) for event in events]


def owners(event: AlarmEvent) -> list[tuple[str, str]]:
    """Each owner's name and the rule that chose it."""
    return [(owner.name, owner.rule) for owner in event.owners]


async def test_alarm_lifecycle_is_published_and_kept_as_history(alarmer: Alarmer) -> None:
    """Warning raises, critical changes, ok resolves; each transition is an event and a history row."""
    host = "blog.example.com"
    warning, critical, ok = (
        evaluation(host, "a" * 64, WITHIN_30),
        evaluation(host, "a" * 64, WITHIN_7),
        evaluation(host),
    )
    events = [*await alarmer.feed(warning), *await alarmer.feed(critical), *await alarmer.feed(ok)]

    assert [e.type for e in events] == [
        "io.certmon.alarm.raised.v1",
        "io.certmon.alarm.changed.v1",
        "io.certmon.alarm.resolved.v1",
    ]
    raised, changed, resolved = payloads(events)
    assert [(p.level, p.previous_level) for p in (raised, changed, resolved)] == [
        ("warning", None),
        ("critical", "warning"),
        ("ok", "critical"),
    ]
    assert raised.alarm_id == changed.alarm_id == resolved.alarm_id
    assert raised.triggers == ["expiry"] and raised.findings == [WITHIN_30]
    assert raised.certificate is not None and raised.certificate.fingerprint_sha256 == "a" * 64
    assert raised.days_remaining == 20.0

    async with alarmer.pool.acquire() as conn:
        kept = await repository.history(conn, raised.alarm_id)
        state = await conn.fetchrow(
            "SELECT state, level, resolved_at FROM alarmer.alarms WHERE id = $1", raised.alarm_id
        )
    assert [(h.transition, h.from_level, h.to_level) for h in kept] == [
        ("raised", None, "warning"),
        ("changed", "warning", "critical"),
        ("resolved", "critical", "ok"),
    ]
    assert [h.evaluation_id for h in kept] == [p.evaluation_id for p in (raised, changed, resolved)]
    assert all(h.cause == f"evaluation {h.evaluation_id}" for h in kept)
    assert dict(state) == {"state": "resolved", "level": "ok", "resolved_at": NOW}


async def test_redelivered_evaluation_publishes_nothing_twice(alarmer: Alarmer) -> None:
    """The same evaluated event delivered twice (same id) yields one alarm event and one history row."""
    event = make_event(
        "certificate.evaluated.v1", evaluation("blog.example.com", "a" * 64, WITHIN_30), source="certmon/evaluator"
    )
    first = await alarmer.feed(event, event)
    again = await alarmer.feed(event)

    assert [e.type for e in first] == ["io.certmon.alarm.raised.v1"]
    assert again == []
    async with alarmer.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alarmer.alarm_history") == 1
        assert await conn.fetchval("SELECT count(*) FROM alarmer.outbox") == 1


async def test_certificate_rule_owner_beats_server_owner(alarmer: Alarmer) -> None:
    """A certificate rule naming an owner wins over the owner of the server the target is on."""
    [event] = payloads(await alarmer.feed(evaluation("api.example.com", "a" * 64, WITHIN_30)))
    assert owners(event) == [("shop-team", "certificates[1] san=api.example.com")]
    assert event.owners[0].email == ["alice@example.com", "bob@example.com"]
    assert event.owners[0].delivery == "individual"


async def test_server_owner_beats_default_owner(alarmer: Alarmer) -> None:
    """With no certificate rule, the owner of the target's server is told, not the default owner."""
    [event] = payloads(await alarmer.feed(evaluation("blog.example.com", "a" * 64, WITHIN_30)))
    assert owners(event) == [("platform-team", "server web-01")]


async def test_default_owner_when_nothing_more_specific(alarmer: Alarmer) -> None:
    """A target with no server and a certificate no rule matches goes to the default owner."""
    [event] = payloads(await alarmer.feed(evaluation("intranet.example.com", "a" * 64, WITHIN_30)))
    assert owners(event) == [("security-team", "default")]


async def test_critical_certificate_names_both_owners(alarmer: Alarmer) -> None:
    """A certificate marked critical notifies its certificate owner and its server owner."""
    [event] = payloads(await alarmer.feed(evaluation("www.shop.example.com", "a" * 64, WITHIN_30)))
    assert owners(event) == [
        ("shop-team", "certificates[0] san=*.shop.example.com"),
        ("platform-team", "server web-01 (critical certificate)"),
    ]


async def test_renewed_certificate_resolves_the_old_alarm_with_the_old_certificate(alarmer: Alarmer) -> None:
    """A new fingerprint without problems resolves the old certificate's alarm, naming the old certificate."""
    host = "blog.example.com"
    [raised] = payloads(await alarmer.feed(evaluation(host, "a" * 64, WITHIN_7)))
    [resolved] = payloads(await alarmer.feed(evaluation(host, "b" * 64)))
    assert (resolved.transition, resolved.alarm_id, resolved.previous_level) == (
        "resolved",
        raised.alarm_id,
        "critical",
    )
    assert resolved.certificate is not None and resolved.certificate.fingerprint_sha256 == "a" * 64
    assert resolved.key.fingerprint_sha256 == "a" * 64


async def test_unreachable_escalates_then_recovery_resolves_only_reachability(alarmer: Alarmer) -> None:
    """Failures raise reachability at warning, then critical; the certificate's alarm survives and stays open."""
    host = "blog.example.com"
    [cert_alarm] = payloads(await alarmer.feed(evaluation(host, "a" * 64, WITHIN_30)))
    [raised] = payloads(await alarmer.feed(unreachable(host)))
    [changed] = payloads(await alarmer.feed(unreachable(host)))
    [resolved] = payloads(await alarmer.feed(evaluation(host, "a" * 64, WITHIN_30)))

    assert (raised.transition, raised.level, raised.key.fingerprint_sha256) == ("raised", "warning", "")
    assert (changed.transition, changed.level, changed.previous_level) == ("changed", "critical", "warning")
    assert (resolved.transition, resolved.alarm_id) == ("resolved", raised.alarm_id)
    assert raised.certificate is None and owners(raised) == [("platform-team", "server web-01")]
    async with alarmer.pool.acquire() as conn:
        open_ids = await conn.fetch("SELECT id FROM alarmer.alarms WHERE state = 'open'")
        failures = await conn.fetchval(
            "SELECT consecutive_failures FROM alarmer.target_health WHERE target_key = $1", f"{host}:443"
        )
    assert [str(r["id"]) for r in open_ids] == [cert_alarm.alarm_id]
    assert failures == 0


async def test_older_evaluation_arriving_late_is_ignored(alarmer: Alarmer) -> None:
    """An evaluation observed before one already applied changes nothing."""
    host = "blog.example.com"
    older = evaluation(host, "a" * 64, WITHIN_7)
    newer = evaluation(host, "a" * 64, WITHIN_30)
    await alarmer.feed(newer)
    assert await alarmer.feed(older) == []


async def test_event_that_is_not_an_evaluation_is_dead_lettered(alarmer: Alarmer) -> None:
    """Data that is not an evaluation is rejected until the delivery limit, then dead-lettered, with no effect."""
    bad = CloudEvent(source="certmon/evaluator", type="io.certmon.certificate.evaluated.v1", data={"target": 1})
    assert await alarmer.feed(bad) == []
    assert [event.id for _, event in alarmer.bus.dead_letters] == [bad.id]
