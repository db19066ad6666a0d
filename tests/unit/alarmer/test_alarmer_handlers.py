"""The evaluation handler on the in-memory alarm store: evaluations in, alarm transitions, history and alarm
events out, each evaluation all or nothing and at most once."""

from dataclasses import dataclass

import pytest

from services.alarmer.adapters.memory import InMemoryAlarmStore, InMemoryUnitOfWork
from services.alarmer.handlers import EvaluationHandler
from services.alarmer.ports import HistoryEntry, StoredAlarm, TargetHealth
from shared.broker import Message
from shared.events import AlarmEvent, CloudEvent, Evaluation, make_event
from tests.support.alarms import (
    ALARMER_CONFIG,
    NOW,
    WITHIN_7,
    WITHIN_30,
    evaluation,
    payloads,
    unreachable,
)

BLOG = "blog.example.com"


def evaluated(item: Evaluation) -> Message[Evaluation]:
    """The evaluation as the bus hands it over, in a new `certificate.evaluated.v1` envelope."""
    return Message(make_event("certificate.evaluated.v1", item, source="certmon/evaluator"), item)


@dataclass
class Alarmer:
    """The handler on a store of its own, with the clock stopped at NOW."""

    store: InMemoryAlarmStore
    handler: EvaluationHandler

    async def feed(self, *items: Evaluation | Message[Evaluation]) -> list[CloudEvent]:
        """Handle each evaluation in turn; returns the alarm events the store committed meanwhile."""
        before = len(self.store.outbox)
        for item in items:
            await self.handler(item if isinstance(item, Message) else evaluated(item))
        return self.store.outbox[before:]

    async def history(self, alarm_id: str) -> list[HistoryEntry]:
        """The alarm's committed history."""
        async with self.store.unit_of_work() as uow:
            return await uow.history(alarm_id)

    async def open_alarms(self, host: str) -> list[StoredAlarm]:
        """The committed open alarms of the host's target."""
        async with self.store.unit_of_work() as uow:
            return await uow.open_alarms(f"{host}:443")

    async def health(self, host: str) -> TargetHealth:
        """The committed health of the host's target."""
        async with self.store.unit_of_work() as uow:
            return await uow.lock_target_health(f"{host}:443")


def alarmer_on(store: InMemoryAlarmStore) -> Alarmer:
    """The handler wired to `store`, the test config and a stopped clock."""
    return Alarmer(store, EvaluationHandler(store=store, config=ALARMER_CONFIG, clock=lambda: NOW))


@pytest.fixture
def alarmer() -> Alarmer:
    """The handler on an empty in-memory store."""
    return alarmer_on(InMemoryAlarmStore())


def owners(event: AlarmEvent) -> list[tuple[str, str]]:
    """Each owner's name and the rule that chose it."""
    return [(owner.name, owner.rule) for owner in event.owners]


async def test_alarm_lifecycle_is_published_and_kept_as_history(alarmer: Alarmer) -> None:
    """Warning raises, critical changes, ok resolves; each transition is an event and a history entry."""
    warning, critical, ok = (
        evaluation(BLOG, "a" * 64, WITHIN_30),
        evaluation(BLOG, "a" * 64, WITHIN_7),
        evaluation(BLOG),
    )
    events = await alarmer.feed(warning, critical, ok)

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
    assert all(e.subject == raised.alarm_id and e.source == "certmon/alarmer" for e in events)

    kept = await alarmer.history(raised.alarm_id)
    assert [(h.transition, h.from_level, h.to_level, h.at) for h in kept] == [
        ("raised", None, "warning", NOW),
        ("changed", "warning", "critical", NOW),
        ("resolved", "critical", "ok", NOW),
    ]
    assert [h.evaluation_id for h in kept] == [p.evaluation_id for p in (raised, changed, resolved)]
    assert all(h.cause == f"evaluation {h.evaluation_id}" for h in kept)
    assert await alarmer.open_alarms(BLOG) == []


async def test_open_alarm_keeps_its_latest_event(alarmer: Alarmer) -> None:
    """After a change the open alarm carries the change's level and event, for the next decision."""
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30))
    [changed] = payloads(await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7)))
    [stored] = await alarmer.open_alarms(BLOG)
    assert (stored.alarm.alarm_id, stored.alarm.level, stored.last_event) == (changed.alarm_id, "critical", changed)


async def test_redelivered_evaluation_has_no_effect(alarmer: Alarmer) -> None:
    """The same evaluated event delivered twice (same id) yields one alarm event and one history entry."""
    message = evaluated(evaluation(BLOG, "a" * 64, WITHIN_30))
    first = await alarmer.feed(message)
    again = await alarmer.feed(message)

    assert [e.type for e in first] == ["io.certmon.alarm.raised.v1"]
    assert again == []
    [raised] = payloads(first)
    assert len(await alarmer.history(raised.alarm_id)) == 1


async def test_healthy_target_publishes_nothing_but_is_remembered(alarmer: Alarmer) -> None:
    """An evaluation without findings on a target without alarms publishes nothing and records its time."""
    healthy = evaluation(BLOG)
    assert await alarmer.feed(healthy) == []
    assert await alarmer.health(BLOG) == TargetHealth(0, healthy.observed_at)


async def test_certificate_rule_owner_beats_server_owner(alarmer: Alarmer) -> None:
    """A certificate rule naming an owner wins over the owner of the server the target is on."""
    [event] = payloads(await alarmer.feed(evaluation("api.example.com", "a" * 64, WITHIN_30)))
    assert owners(event) == [("shop-team", "certificates[1] san=api.example.com")]
    assert event.owners[0].email == ["alice@example.com", "bob@example.com"]
    assert event.owners[0].delivery == "individual"


async def test_server_owner_beats_default_owner(alarmer: Alarmer) -> None:
    """With no certificate rule, the owner of the target's server is told, not the default owner."""
    [event] = payloads(await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30)))
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
    [raised] = payloads(await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7)))
    [resolved] = payloads(await alarmer.feed(evaluation(BLOG, "b" * 64)))
    assert (resolved.transition, resolved.alarm_id, resolved.previous_level) == (
        "resolved",
        raised.alarm_id,
        "critical",
    )
    assert resolved.certificate is not None and resolved.certificate.fingerprint_sha256 == "a" * 64
    assert resolved.key.fingerprint_sha256 == "a" * 64


async def test_unreachable_escalates_then_recovery_resolves_only_reachability(alarmer: Alarmer) -> None:
    """Failures raise reachability at warning, then critical; the certificate's alarm survives and stays open."""
    [cert_alarm] = payloads(await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30)))
    [raised] = payloads(await alarmer.feed(unreachable(BLOG)))
    [changed] = payloads(await alarmer.feed(unreachable(BLOG)))
    assert (await alarmer.health(BLOG)).consecutive_failures == 2
    [resolved] = payloads(await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30)))

    assert (raised.transition, raised.level, raised.key.fingerprint_sha256) == ("raised", "warning", "")
    assert (changed.transition, changed.level, changed.previous_level) == ("changed", "critical", "warning")
    assert (resolved.transition, resolved.alarm_id) == ("resolved", raised.alarm_id)
    assert raised.certificate is None and owners(raised) == [("platform-team", "server web-01")]
    assert [s.alarm.alarm_id for s in await alarmer.open_alarms(BLOG)] == [cert_alarm.alarm_id]
    assert (await alarmer.health(BLOG)).consecutive_failures == 0


async def test_older_evaluation_arriving_late_is_ignored(alarmer: Alarmer) -> None:
    """An evaluation observed before one already applied changes nothing, not even the target's health."""
    older = evaluation(BLOG, "a" * 64, WITHIN_7)
    newer = evaluation(BLOG, "a" * 64, WITHIN_30)
    [raised] = payloads(await alarmer.feed(newer))
    assert await alarmer.feed(older) == []
    assert await alarmer.health(BLOG) == TargetHealth(0, newer.observed_at)
    assert [s.alarm.level for s in await alarmer.open_alarms(BLOG)] == ["warning"]
    assert len(await alarmer.history(raised.alarm_id)) == 1


class _OutboxDownUnitOfWork(InMemoryUnitOfWork):
    """A unit of work whose outbox write fails, as a database that goes away mid-transaction."""

    async def publish_later(self, event: CloudEvent) -> None:
        """Fail like a lost connection."""
        raise ConnectionError("outbox unreachable")


class _OutboxDownStore(InMemoryAlarmStore):
    """The in-memory store while `down`: every unit of work fails when it queues an event."""

    down = True

    def unit_of_work(self) -> InMemoryUnitOfWork:
        """A failing unit of work while down, else a working one."""
        return _OutboxDownUnitOfWork(self) if self.down else super().unit_of_work()


async def test_failure_rolls_back_the_whole_evaluation() -> None:
    """A failure after the transition was recorded leaves no claim, alarm, history or health behind."""
    store = _OutboxDownStore()
    alarmer = alarmer_on(store)
    message = evaluated(evaluation(BLOG, "a" * 64, WITHIN_30))

    with pytest.raises(ConnectionError):
        await alarmer.feed(message)
    assert store.outbox == []
    assert await alarmer.open_alarms(BLOG) == []
    assert await alarmer.health(BLOG) == TargetHealth(0, None)

    store.down = False
    [raised] = payloads(await alarmer.feed(message))  # the redelivery is not taken for a duplicate
    assert [h.transition for h in await alarmer.history(raised.alarm_id)] == ["raised"]


async def test_alarm_and_event_ids_derive_from_the_evaluation_event() -> None:
    """One evaluated event handled from scratch twice opens the same alarm id with the same event id."""
    message = evaluated(evaluation(BLOG, "a" * 64, WITHIN_30))
    [first] = await alarmer_on(InMemoryAlarmStore()).feed(message)
    [second] = await alarmer_on(InMemoryAlarmStore()).feed(message)
    assert (first.id, first.subject) == (second.id, second.subject)
