"""The alarm lifecycle on the in-memory store: reminders at each level's cadence, acknowledgements that silence
them, worse levels that re-open, and the events and history every transition leaves."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import structlog

from services.alarmer.adapters.memory import InMemoryAlarmStore, InMemoryUnitOfWork
from services.alarmer.domain.lifecycle import duration_text
from services.alarmer.handlers import AcknowledgementHandler, EvaluationHandler
from services.alarmer.ports import Reminder
from services.alarmer.service_layer.reminders import ReminderSweep
from shared.broker import Message
from shared.config import CertmonConfig, parse_config
from shared.events import AcknowledgementRequested, AlarmEvent, CloudEvent, Evaluation, make_event
from tests.support.alarms import (
    ALARMER_CONFIG,
    NOW,
    WITHIN_7,
    WITHIN_30,
    ManualClock,
    acknowledgement_request,
    evaluation,
    finding,
    payloads,
)

BLOG = "blog.example.com"
INFO = finding("expiry.within_90_days", "info", "expiry")
DAY, WEEK = timedelta(days=1), timedelta(days=7)


@dataclass
class Alarmer:
    """The evaluation and acknowledgement handlers and the reminder sweep on one store and one manual clock."""

    store: InMemoryAlarmStore
    clock: ManualClock
    evaluations: EvaluationHandler
    acknowledgements: AcknowledgementHandler
    sweep: ReminderSweep

    async def feed(self, *items: Evaluation) -> list[AlarmEvent]:
        """Handle each evaluation; returns the alarm payloads committed meanwhile."""
        before = len(self.store.outbox)
        for item in items:
            await self.evaluations(Message(make_event("certificate.evaluated.v1", item, source="t"), item))
        return payloads(self.store.outbox[before:])

    async def remind(self) -> list[CloudEvent]:
        """Run one sweep at the clock's time; returns the events it committed."""
        before = len(self.store.outbox)
        await self.sweep.sweep()
        return self.store.outbox[before:]

    async def acknowledge(self, event: CloudEvent) -> list[AlarmEvent]:
        """Handle an acknowledgement request; returns the alarm payloads committed meanwhile."""
        before = len(self.store.outbox)
        await self.acknowledgements(Message(event, AcknowledgementRequested.model_validate(event.data)))
        return payloads(self.store.outbox[before:])

    async def latest(self, alarm_id: str) -> AlarmEvent | None:
        """The alarm's latest committed event."""
        async with self.store.unit_of_work() as uow:
            return await uow.lock_alarm(alarm_id)


def alarmer_with(
    config: CertmonConfig = ALARMER_CONFIG, *, batch_size: int = 500, store: InMemoryAlarmStore | None = None
) -> Alarmer:
    """The alarmer's parts wired to `store` (a fresh one by default), `config` and a clock standing at NOW."""
    store, clock = store or InMemoryAlarmStore(), ManualClock()
    sweep = ReminderSweep(store, config, clock, batch_size=batch_size)
    evaluations = EvaluationHandler(store=store, config=config, clock=clock, reminder_scheduled=sweep.expect)
    return Alarmer(store, clock, evaluations, AcknowledgementHandler(store=store, clock=clock), sweep)


@pytest.fixture
def alarmer() -> Alarmer:
    """The alarmer on the test config (default cadences: critical daily, warning weekly, info off)."""
    return alarmer_with()


def test_cadences_are_written_in_the_largest_unit_that_divides_them() -> None:
    """The cadence a cause names reads as in `certmon.yaml`."""
    assert [duration_text(s) for s in (86400, 604800, 3600, 5, 90, 1209600)] == ["1d", "1w", "1h", "5s", "90s", "2w"]


async def test_raise_schedules_the_first_reminder_at_its_levels_cadence(alarmer: Alarmer) -> None:
    """A critical alarm is due a day after it is raised, a warning a week after, an info never."""
    [critical] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    [warning] = await alarmer.feed(evaluation("api.example.com", "a" * 64, WITHIN_30))
    [info] = await alarmer.feed(evaluation("intranet.example.com", "a" * 64, INFO))
    assert (critical.state, critical.next_reminder_at, critical.reminders_sent) == ("open", NOW + DAY, 0)
    assert warning.next_reminder_at == NOW + WEEK
    assert info.next_reminder_at is None
    assert critical.cause == f"evaluation {critical.evaluation_id}" and critical.acknowledgement is None


async def test_reminder_is_sent_when_due_and_not_a_second_before(alarmer: Alarmer) -> None:
    """The sweep sends nothing until the due time, then one `alarm.reminded.v1` that schedules the next."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    alarmer.clock.advance(days=1, seconds=-1)
    assert await alarmer.remind() == []
    due = alarmer.clock.advance(seconds=1)
    [event] = await alarmer.remind()

    assert event.type == "io.certmon.alarm.reminded.v1" and event.subject == raised.alarm_id
    [reminder] = payloads([event])
    assert (reminder.transition, reminder.state, reminder.level, reminder.previous_level) == (
        "reminded",
        "open",
        "critical",
        None,
    )
    assert (reminder.reminders_sent, reminder.occurred_at, reminder.next_reminder_at) == (1, due, due + DAY)
    assert reminder.cause == "reminder schedule (every 1d)"
    assert (reminder.findings, reminder.owners, reminder.certificate) == (
        raised.findings,
        raised.owners,
        raised.certificate,
    )
    async with alarmer.store.unit_of_work() as uow:
        kept = await uow.history(raised.alarm_id)
    assert [(h.transition, h.at, h.cause) for h in kept][-1] == ("reminded", due, "reminder schedule (every 1d)")


async def test_a_sweep_run_again_sends_nothing_more(alarmer: Alarmer) -> None:
    """Once a reminder is sent, sweeping again at the same time sends no second one."""
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    alarmer.clock.advance(days=1)
    assert len(await alarmer.remind()) == 1
    assert await alarmer.remind() == []


async def test_reminders_go_on_at_the_cadence_and_count(alarmer: Alarmer) -> None:
    """Each reminder counts on from the last one; a late sweep schedules the next from when it sent."""
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    alarmer.clock.advance(days=1)
    first = payloads(await alarmer.remind())
    late = alarmer.clock.advance(days=1, hours=5)
    second = payloads(await alarmer.remind())
    assert [p.reminders_sent for p in (*first, *second)] == [1, 2]
    assert second[0].next_reminder_at == late + DAY


async def test_reminder_event_ids_derive_from_the_alarm_and_reminder_number() -> None:
    """The same alarm's same reminder, sent from scratch twice, has the same event id; the next has another."""
    item = evaluation(BLOG, "a" * 64, WITHIN_7)
    message = Message(make_event("certificate.evaluated.v1", item, source="t"), item)
    runs = []
    for _ in range(2):
        alarmer = alarmer_with()
        await alarmer.evaluations(message)
        alarmer.clock.advance(days=1)
        [first] = await alarmer.remind()
        alarmer.clock.advance(days=1)
        [second] = await alarmer.remind()
        runs.append((first.id, second.id))
    assert runs[0] == runs[1] and runs[0][0] != runs[0][1]


async def test_the_sweep_sends_every_due_reminder_in_batches() -> None:
    """More due alarms than a batch holds are all reminded in one sweep, each once."""
    alarmer = alarmer_with(batch_size=2)
    hosts = [f"h{i}.example.com" for i in range(5)]
    for host in hosts:
        await alarmer.feed(evaluation(host, "a" * 64, WITHIN_7))
    alarmer.clock.advance(days=1)
    sent = payloads(await alarmer.remind())
    assert sorted(p.target_key for p in sent) == sorted(f"{h}:443" for h in hosts)


async def test_cadence_follows_owner_server_and_certificate_rules() -> None:
    """A certificate rule's cadence beats the server's, which beats the owner's, over the defaults."""
    config = parse_config(
        {
            **ALARMER_CONFIG.model_dump(mode="json", exclude_defaults=True),
            "owners": {
                "platform-team": {"email": ["platform@example.com"], "reminders": {"critical": "6h"}},
                "shop-team": {"email": ["shop@example.com"], "reminders": {"warning": "1d"}},
                "security-team": {"email": ["secops@example.com"]},
            },
            "servers": {
                "web-01": {"addresses": ["10.0.0.5"], "owner": "platform-team", "reminders": {"critical": "1h"}}
            },
            "certificates": [
                {"match": {"san": "api.example.com"}, "owner": "shop-team", "reminders": {"critical": "5s"}}
            ],
        }
    )
    alarmer = alarmer_with(config)
    [server] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    [rule] = await alarmer.feed(evaluation("api.example.com", "a" * 64, WITHIN_7))
    assert server.next_reminder_at == NOW + timedelta(hours=1)
    assert rule.next_reminder_at == NOW + timedelta(seconds=5)
    at = alarmer.clock.advance(seconds=5)
    [reminder] = payloads(await alarmer.remind())
    assert (reminder.alarm_id, reminder.cause) == (rule.alarm_id, "reminder schedule (every 5s)")
    *_, owner = await alarmer.feed(evaluation("api.example.com", "b" * 64, WITHIN_30))
    assert owner.next_reminder_at == at + DAY  # shop-team's warning cadence; the rule sets only critical


async def test_a_cadence_turned_off_since_stops_reminders_without_sending() -> None:
    """An alarm due under a cadence the config has since turned off is sent nothing and scheduled no more."""
    before = alarmer_with()
    [raised] = await before.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    off = parse_config(
        {
            **ALARMER_CONFIG.model_dump(mode="json", exclude_defaults=True),
            "defaults": {"reminders": {"critical": "off"}},
        }
    )
    sweep = ReminderSweep(before.store, off, before.clock)
    before.clock.advance(days=1)
    assert await sweep.sweep() == 0
    latest = await before.latest(raised.alarm_id)
    assert latest is not None and latest.next_reminder_at is None
    async with before.store.unit_of_work() as uow:
        assert await uow.earliest_reminder() is None


class _BatchLostUnitOfWork(InMemoryUnitOfWork):
    """A unit of work whose connection is lost once a batch's reminders are written, before the commit."""

    async def record_reminders(self, sent: Sequence[Reminder], *, stopped: Sequence[str], at: datetime) -> None:
        """Write the batch, then fail like a lost connection."""
        await super().record_reminders(sent, stopped=stopped, at=at)
        raise ConnectionError("database gone")


class _BatchLostStore(InMemoryAlarmStore):
    """The in-memory store while `down`: every unit of work fails after writing its reminders."""

    down = True

    def unit_of_work(self) -> InMemoryUnitOfWork:
        """A failing unit of work while down, else a working one."""
        return _BatchLostUnitOfWork(self) if self.down else super().unit_of_work()


async def test_a_failed_batch_leaves_its_alarms_due_and_sends_nothing() -> None:
    """A batch is all or nothing: when it fails, no reminder, history or next due time of it is kept, and the
    next sweep sends each reminder once."""
    store = _BatchLostStore()
    alarmer = alarmer_with(batch_size=2, store=store)
    store.down = False
    raised = await alarmer.feed(*(evaluation(f"h{i}.example.com", "a" * 64, WITHIN_7) for i in range(3)))
    store.down = True
    due = alarmer.clock.advance(days=1)

    with pytest.raises(ConnectionError):
        await alarmer.remind()
    assert store.outbox[len(raised) :] == []
    async with store.unit_of_work() as uow:
        for alarm in raised:
            assert await uow.lock_alarm(alarm.alarm_id) == alarm
            assert [h.transition for h in await uow.history(alarm.alarm_id)] == ["raised"]

    store.down = False
    sent = payloads(await alarmer.remind())
    assert sorted((p.alarm_id, p.reminders_sent, p.next_reminder_at) for p in sent) == sorted(
        (a.alarm_id, 1, due + DAY) for a in raised
    )


async def test_acknowledging_an_open_alarm_records_who_and_silences_it(alarmer: Alarmer) -> None:
    """An open alarm becomes acknowledged with who, when, how and why; no reminder follows."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    at = alarmer.clock.advance(hours=1)
    [acked] = await alarmer.acknowledge(acknowledgement_request(raised.alarm_id, comment="renewing", via="link"))

    assert (acked.transition, acked.state, acked.level, acked.next_reminder_at) == (
        "acknowledged",
        "acknowledged",
        "critical",
        None,
    )
    assert acked.acknowledgement is not None
    assert (acked.acknowledgement.by, acked.acknowledgement.at, acked.acknowledgement.via) == (
        "alice@example.com",
        NOW,
        "link",
    )
    assert acked.cause == "acknowledged by alice@example.com via link: renewing" and acked.occurred_at == at
    async with alarmer.store.unit_of_work() as uow:
        [_, kept] = await uow.history(raised.alarm_id)
        assert [s.alarm.alarm_id for s in await uow.open_alarms(f"{BLOG}:443")] == [raised.alarm_id]
    assert (kept.transition, kept.cause) == ("acknowledged", acked.cause)
    alarmer.clock.advance(days=30)
    assert await alarmer.remind() == []


async def test_a_redelivered_acknowledgement_has_no_effect(alarmer: Alarmer) -> None:
    """The same request delivered twice acknowledges once."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    request = acknowledgement_request(raised.alarm_id)
    assert len(await alarmer.acknowledge(request)) == 1
    assert await alarmer.acknowledge(request) == []


@pytest.mark.parametrize("case", ["already_acknowledged", "resolved", "unknown_alarm", "not_an_id"])
async def test_acknowledgement_that_changes_nothing_is_logged_with_its_reason(alarmer: Alarmer, case: str) -> None:
    """A request for an alarm acknowledged already, resolved or unknown publishes nothing and says why."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    alarm_id = {"unknown_alarm": "00000000-0000-0000-0000-000000000000", "not_an_id": "x"}.get(case, raised.alarm_id)
    if case == "already_acknowledged":
        await alarmer.acknowledge(acknowledgement_request(raised.alarm_id, by="bob@example.com"))
    if case == "resolved":
        await alarmer.feed(evaluation(BLOG))
    with structlog.testing.capture_logs() as logs:
        assert await alarmer.acknowledge(acknowledgement_request(alarm_id)) == []
    reason = "unknown_alarm" if case == "not_an_id" else case
    assert {"event": "acknowledgement_ignored", "reason": reason} in [
        {"event": e["event"], "reason": e.get("reason")} for e in logs
    ]


async def test_a_worse_level_reopens_an_acknowledged_alarm(alarmer: Alarmer) -> None:
    """Acknowledged at warning, a critical evaluation re-opens it: acknowledgement cleared, reminders resume."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30))
    await alarmer.acknowledge(acknowledgement_request(raised.alarm_id))
    at = alarmer.clock.advance(hours=2)
    [changed] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    assert (changed.transition, changed.state, changed.acknowledgement) == ("changed", "open", None)
    assert (changed.next_reminder_at, changed.reminders_sent) == (at + DAY, 0)
    alarmer.clock.advance(days=1)
    assert [p.transition for p in payloads(await alarmer.remind())] == ["reminded"]


async def test_a_better_level_leaves_an_acknowledged_alarm_acknowledged(alarmer: Alarmer) -> None:
    """Acknowledged at critical, a warning evaluation publishes the change but keeps it acknowledged and quiet."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    [acked] = await alarmer.acknowledge(acknowledgement_request(raised.alarm_id))
    [changed] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30))
    assert (changed.transition, changed.level, changed.state) == ("changed", "warning", "acknowledged")
    assert (changed.acknowledgement, changed.next_reminder_at) == (acked.acknowledgement, None)
    alarmer.clock.advance(days=60)
    assert await alarmer.remind() == []


async def test_resolve_closes_an_acknowledged_alarm(alarmer: Alarmer) -> None:
    """Ok resolves an acknowledged alarm like an open one; a new problem later raises a new alarm."""
    [raised] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    await alarmer.acknowledge(acknowledgement_request(raised.alarm_id))
    [resolved] = await alarmer.feed(evaluation(BLOG))
    assert (resolved.transition, resolved.state, resolved.acknowledgement, resolved.next_reminder_at) == (
        "resolved",
        "resolved",
        None,
        None,
    )
    [again] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    assert again.transition == "raised" and again.alarm_id != raised.alarm_id


async def test_change_resets_the_reminder_count_and_reschedules(alarmer: Alarmer) -> None:
    """A level change is a notification: the count starts again and the next reminder is a cadence later."""
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_30))
    alarmer.clock.advance(days=7)
    [reminder] = payloads(await alarmer.remind())
    at = alarmer.clock.advance(hours=1)
    [changed] = await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    assert (reminder.reminders_sent, changed.reminders_sent, changed.next_reminder_at) == (1, 0, at + DAY)


async def test_the_loop_checks_no_sooner_than_the_earliest_due_time_within_bounds(alarmer: Alarmer) -> None:
    """After a sweep the loop waits for the earliest due reminder, at least half a second, at most 30 s."""
    assert await alarmer.sweep.tick() == 0  # nothing scheduled: next check in 30 s
    alarmer.clock.advance(seconds=29)
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))  # due in a day: no earlier than planned
    assert await alarmer.sweep.tick() == 0
    alarmer.clock.advance(seconds=1)
    assert await alarmer.sweep.tick() == 0  # checked: due in a day, so the next check is 30 s on
    alarmer.clock.advance(days=1)
    assert await alarmer.sweep.tick() == 1


async def test_a_reminder_scheduled_sooner_than_planned_is_checked_in_time() -> None:
    """A 5 s cadence scheduled after the loop planned a 30 s wait is swept when due, not 30 s later."""
    config = parse_config(
        {**ALARMER_CONFIG.model_dump(mode="json", exclude_defaults=True), "defaults": {"reminders": {"critical": "5s"}}}
    )
    alarmer = alarmer_with(config)
    await alarmer.sweep.tick()
    await alarmer.feed(evaluation(BLOG, "a" * 64, WITHIN_7))
    alarmer.clock.advance(seconds=5)
    assert await alarmer.sweep.tick() == 1
    alarmer.clock.advance(seconds=0.4)
    assert await alarmer.sweep.tick() == 0
    alarmer.clock.advance(seconds=4.6)
    assert await alarmer.sweep.tick() == 1
