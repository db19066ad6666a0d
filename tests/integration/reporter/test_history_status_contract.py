"""What the daily and custom status reports read, one contract on both history adapters: each target's status
(`domain.status`) as projected in SQL equals the in-memory projection of its latest evaluation, and the alarms a
status report reads make the report the whole alarm history would."""

from datetime import datetime, timedelta

import asyncpg

from services.reporter.adapters.history import History
from services.reporter.domain.report import alarm_line, build_status_report
from services.reporter.domain.status import TOP_FINDINGS, status_of
from services.reporter.service_layer.building import status_alarms
from shared.events import Acknowledgement, AlarmEvent, AlarmTransition, Finding, ObservationError
from shared.events.evaluation import Level
from tests.integration.reporter import test_history_contract as contract
from tests.integration.reporter.test_history_contract import StoreUnderTest
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation, statuses

# The contract's fixtures: each case runs once on the in-memory history and once on PostgreSQL.
pool_or_none = contract.pool_or_none
under_test = contract.under_test

FINDINGS = [
    Finding(code="tls.no_tls13", severity="notice", message="TLS 1.3 is not offered"),
    Finding(code="expiry.within_30_days", severity="warning", message="expires in 20 days"),
    Finding(code="cipher.weak", severity="warning", message="3DES offered"),
    Finding(code="key.weak", severity="critical", message="RSA 1024"),
    Finding(code="tls.tls10", severity="warning", message="TLS 1.0 offered"),
]


async def test_statuses_are_the_latest_evaluations_projected(under_test: StoreUnderTest) -> None:
    """By target key, each status is `status_of` the target's latest evaluation at its last sighting: its top
    findings (most severe first, ties in order), its error, no certificate, the last sighting's time and days."""
    history = under_test.history
    first = evaluation("run.example", days=40, evaluated_at=NOW - timedelta(hours=3))
    assert first.expiry is not None
    again = first.model_copy(
        update={
            "evaluated_at": NOW - timedelta(hours=1),
            "observed_at": NOW - timedelta(hours=1),
            "expiry": first.expiry.model_copy(update={"days_remaining": 39.9}),
        }
    )
    down = evaluation(
        "down.example", days=None, level="warning", error=ObservationError(kind="timeout", message="no answer in 10 s")
    )
    noisy = evaluation("noisy.example", days=20, level="critical", grade="F", owner="shop-team", findings=FINDINGS)
    for event_id, item in (("r1", first), ("r2", again), ("d1", down), ("n1", noisy)):
        assert await history.record_evaluation(event_id, item)
    found = await history.statuses()
    assert found == [status_of(e) for e in await history.latest()]
    assert [s.target_key for s in found] == ["down.example:443", "noisy.example:443", "run.example:443"]
    down_status, noisy_status, run_status = found
    assert (down_status.error_kind, down_status.fingerprint, down_status.days_remaining) == ("timeout", None, None)
    assert [code for code, _, _ in noisy_status.findings] == ["key.weak", "expiry.within_30_days", "cipher.weak"]
    assert len(noisy_status.findings) == TOP_FINDINGS
    assert (run_status.evaluated_at, run_status.days_remaining) == (again.evaluated_at, 39.9)


async def test_alarm_transitions_are_each_unresolved_alarms_latest_and_the_recent_ones(
    under_test: StoreUnderTest,
) -> None:
    """The latest transition of each open or acknowledged alarm and every transition since the moment given, each
    once, in the order they happened, as the lines of the events (who acknowledged while acknowledged); a resolved
    alarm's older transitions are not read."""
    history = under_test.history
    hour = timedelta(hours=1)
    ack = Acknowledgement(by="jane@example.com", at=NOW - 90 * timedelta(minutes=1), via="link")
    recorded = [
        ("a1-e1", alarm("a1", "raised", "warning", NOW - 5 * hour, host="a")),
        ("a1-e2", alarm("a1", "changed", "critical", NOW - hour, host="a")),
        ("a2-e1", alarm("a2", "raised", "info", NOW - 4 * hour, host="b")),
        ("a3-e1", alarm("a3", "raised", "warning", NOW - 3 * hour, host="c")),
        ("a3-e2", alarm("a3", "resolved", "ok", NOW - 2 * hour, host="c")),
        ("a4-e1", alarm("a4", "raised", "critical", NOW - 6 * hour, host="d")),
        ("a4-e2", alarm("a4", "acknowledged", "critical", ack.at, host="d", acknowledgement=ack)),
    ]
    for event_id, event in recorded:
        assert await history.record_alarm(event_id, event)
    events = dict(recorded)
    read = await history.alarm_transitions(since=NOW - 2 * hour)
    assert read == [alarm_line(events[i]) for i in ("a2-e1", "a3-e2", "a4-e2", "a1-e2")]
    assert (read[2].state, read[2].acknowledged_by, read[2].acknowledged_at) == ("acknowledged", ack.by, ack.at)
    everything = await history.alarm_transitions(since=NOW - 24 * hour)
    assert everything == [alarm_line(event) for event in sorted(events.values(), key=lambda e: e.occurred_at)]


async def test_alarm_transitions_of_events_stored_before_state_existed(pg_pool: asyncpg.Pool) -> None:
    """An event stored without `state` (older alarmers) reads as `AlarmEvent` validates it: resolved by its
    resolve, open otherwise."""
    history = History(pg_pool)
    await history.migrate()
    raised = alarm("old", "raised", "warning", NOW - timedelta(hours=3), host="old")
    resolved = alarm("old", "resolved", "ok", NOW - timedelta(hours=1), host="old")
    for event_id, event in (("old-e1", raised), ("old-e2", resolved)):
        stored = event.model_dump(mode="json", exclude={"state"})
        await pg_pool.execute(
            'INSERT INTO "reporter".alarm_events(event_id, alarm_id, transition, level, fingerprint, at, event) '
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            event_id,
            event.alarm_id,
            event.transition,
            event.level,
            event.key.fingerprint_sha256,
            event.occurred_at,
            stored,
        )
        assert AlarmEvent.model_validate(stored) == event
    read = await history.alarm_transitions(since=NOW - timedelta(hours=4))
    assert read == [alarm_line(raised), alarm_line(resolved)]
    assert [line.state for line in read] == ["open", "resolved"]


async def test_the_alarms_a_status_report_reads_make_the_report_the_whole_history_makes(
    under_test: StoreUnderTest,
) -> None:
    """A status report from the statuses, the unresolved alarms and the last 24 hours' transitions equals the one
    from every evaluation object and the whole alarm history: alarms resolved long ago, resolved and raised in the
    last day, open for weeks, and a transition after the report's moment."""
    history = under_test.history
    day = timedelta(days=1)
    for n, days in enumerate((5, 50, 500, None)):
        await history.record_evaluation(f"e{n}", evaluation(f"t{n}.example", days=days, level="warning"))
    steps: list[tuple[str, AlarmTransition, Level, datetime]] = [
        ("old", "raised", "warning", NOW - 30 * day),
        ("old", "resolved", "ok", NOW - 20 * day),
        ("weeks", "raised", "critical", NOW - 14 * day),
        ("fresh", "raised", "warning", NOW - timedelta(hours=3)),
        ("gone", "raised", "warning", NOW - 3 * day),
        ("gone", "resolved", "ok", NOW - timedelta(hours=2)),
        ("later", "raised", "critical", NOW + timedelta(hours=1)),
    ]
    for n, (alarm_id, transition, level, at) in enumerate(steps):
        await history.record_alarm(f"{alarm_id}-{n}", alarm(alarm_id, transition, level, at, host=alarm_id))
    whole = build_status_report(statuses(await history.latest()), [e for _, e in await history.alarm_events()], now=NOW)
    read = build_status_report(await history.statuses(), await status_alarms(history, NOW), now=NOW)
    assert read == whole
    assert [a.alarm_id for a in read.open_alarms] == ["weeks", "later", "fresh"]
    assert [a.alarm_id for a in read.alarms_resolved] == ["gone"]
