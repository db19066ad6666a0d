"""One contract, two adapters: the in-memory history and the PostgreSQL one must behave alike."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.reporter.adapters.history import History
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.domain.facts import DayLevels, alarm_step, facts_of
from services.reporter.ports import CertificateFilter, HistoryStore
from shared.events import (
    Acknowledgement,
    AcknowledgementRequested,
    ChainInfo,
    Evaluation,
    Finding,
    NotificationResult,
    ReportPublished,
    SecurityCap,
    TargetRef,
    TlsSummary,
    make_event,
)
from shared.events.evaluation import Level
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation


@dataclass
class StoreUnderTest:
    """A ready history and a way to read the ids of the announcements it enqueued, oldest first."""

    history: HistoryStore
    outbox_ids: Callable[[], Awaitable[list[str]]]


@pytest.fixture(params=["memory", "postgres"])
def pool_or_none(request: pytest.FixtureRequest) -> asyncpg.Pool | None:
    """None for the in-memory history; a pool on a fresh database for PostgreSQL (only that one creates it)."""
    return request.getfixturevalue("pg_pool") if request.param == "postgres" else None


@pytest.fixture
async def under_test(pool_or_none: asyncpg.Pool | None) -> StoreUnderTest:
    """Each contract test runs once per adapter; the PostgreSQL one is migrated first."""
    pool = pool_or_none
    if pool is None:
        memory = InMemoryHistory()

        async def memory_outbox() -> list[str]:
            return [event.id for event in memory.outbox]

        return StoreUnderTest(memory, memory_outbox)
    postgres = History(pool)
    await postgres.migrate()

    async def postgres_outbox() -> list[str]:
        return [r["event_id"] for r in await pool.fetch('SELECT event_id FROM "reporter".outbox ORDER BY seq')]

    return StoreUnderTest(postgres, postgres_outbox)


def sent(alarm_id: str, at: datetime, *, channel: str = "email") -> NotificationResult:
    """A delivery of alarm `alarm_id`'s first event at `at`."""
    return NotificationResult.model_validate(
        {
            "alarm_id": alarm_id,
            "alarm_event_id": f"{alarm_id}-e1",
            "channel": channel,
            "recipient": "ops@example.com",
            "attempt": 1,
            "at": at,
        }
    )


def daily(day: datetime, *, key_prefix: str = "daily") -> ReportPublished:
    """The daily report of the UTC day starting at `day`, as the publisher records it."""
    return ReportPublished(
        kind="daily",
        period_start=day,
        period_end=day + timedelta(days=1),
        keys=[f"{key_prefix}/{day:%Y-%m-%d}/status.json"],
        location="/reports",
    )


async def record_report(history: HistoryStore, report: ReportPublished, key: str) -> bool:
    """Record `report` under `key` with an announcement whose id is derived from the key."""
    announcement = make_event("report.published.v1", report, source="t", event_id=f"announce-{key}")
    return await history.record_report(key, report, announcement)


class TestHistoryContract:
    """Behaviour both history adapters share."""

    async def test_ping_answers(self, under_test: StoreUnderTest) -> None:
        """A working store answers the readiness probe without raising."""
        await under_test.history.ping()

    async def test_a_redelivered_evaluation_changes_nothing(self, under_test: StoreUnderTest) -> None:
        """The same event id stored twice answers True then False and leaves one evaluation."""
        history = under_test.history
        first = evaluation("a.example", days=10)
        assert await history.record_evaluation("e1", first) is True
        assert await history.record_evaluation("e1", evaluation("a.example", days=3, evaluated_at=NOW)) is False
        assert await history.latest() == [first]
        assert first.certificate is not None
        assert await history.evaluations_of(first.certificate.fingerprint_sha256) == [first]

    async def test_an_event_id_is_claimed_once_whatever_it_carried(self, under_test: StoreUnderTest) -> None:
        """An id used by an evaluation makes a later alarm or delivery with that id a redelivery."""
        history = under_test.history
        assert await history.record_evaluation("shared-id", evaluation("a.example", days=10))
        assert await history.record_alarm("shared-id", alarm("a1", "raised", "warning", NOW)) is False
        assert await history.record_notification("shared-id", sent("a1", NOW), ok=True) is False
        assert await history.alarm_events() == []
        assert await history.notifications() == []

    async def test_concurrent_redeliveries_store_once(self, under_test: StoreUnderTest) -> None:
        """Five consumers storing the same alarm event at once: one stores it, four see a redelivery."""
        raised = alarm("a1", "raised", "critical", NOW)
        stored = await asyncio.gather(*(under_test.history.record_alarm("e1", raised) for _ in range(5)))
        assert sorted(stored) == [False, False, False, False, True]
        assert await under_test.history.alarm_events() == [("e1", raised)]

    async def test_latest_is_the_newest_whatever_the_arrival_order(self, under_test: StoreUnderTest) -> None:
        """An older evaluation arriving late is kept in the history but does not become the target's latest."""
        history = under_test.history
        newer = evaluation("a.example", days=10, level="warning", evaluated_at=NOW)
        older = evaluation("a.example", days=11, level="ok", evaluated_at=NOW - timedelta(hours=1))
        await history.record_evaluation("newer", newer)
        await history.record_evaluation("older", older)
        assert await history.latest() == [newer]
        assert newer.certificate is not None
        assert await history.evaluations_of(newer.certificate.fingerprint_sha256) == [newer, older]
        assert await history.evaluations_of(newer.certificate.fingerprint_sha256, limit=1) == [newer]

    async def test_an_evaluation_as_new_as_the_latest_replaces_it(self, under_test: StoreUnderTest) -> None:
        """Of two evaluations of one target at the same moment, the one stored last is the latest."""
        history = under_test.history
        first = evaluation("a.example", days=10, level="ok", evaluated_at=NOW)
        second = evaluation("a.example", days=10, level="critical", evaluated_at=NOW)
        await history.record_evaluation("first", first)
        await history.record_evaluation("second", second)
        assert await history.latest() == [second]

    async def test_latest_filters_by_level_grade_owner_and_server(self, under_test: StoreUnderTest) -> None:
        """Each filter narrows the latest evaluations to exact matches; filters combine with AND."""
        history = under_test.history
        web = evaluation("web.example", days=5, level="critical", grade="B", owner="shop-team")
        web = web.model_copy(update={"target": TargetRef(host="web.example", port=443, server="web-01")})
        api = evaluation("api.example", days=50, level="ok", grade="A", owner="shop-team")
        down = evaluation("down.example", days=None, level="warning")
        for event_id, item in enumerate((web, api, down)):
            await history.record_evaluation(f"e{event_id}", item)

        async def keys(where: CertificateFilter) -> list[str]:
            return [e.target_key for e in await history.latest(where)]

        assert await keys(CertificateFilter(level="critical")) == ["web.example:443"]
        assert await keys(CertificateFilter(grade="A")) == ["api.example:443"]
        assert await keys(CertificateFilter(owner="shop-team")) == ["api.example:443", "web.example:443"]
        assert await keys(CertificateFilter(server="web-01")) == ["web.example:443"]
        assert await keys(CertificateFilter(owner="shop-team", level="ok")) == ["api.example:443"]
        assert await keys(CertificateFilter(owner="nobody")) == []
        assert await keys(CertificateFilter()) == ["api.example:443", "down.example:443", "web.example:443"]

    async def test_latest_query_searches_names_case_insensitively_and_literally(
        self, under_test: StoreUnderTest
    ) -> None:
        """`q` finds a substring of target, subject, issuer, SAN or fingerprint, any case; `%` and `_` are text."""
        history = under_test.history
        shop = evaluation("shop.example", days=5, subject="CN=Shop Front,O=Acme_Corp")
        other = evaluation("other.example", days=50)
        bare = evaluation("bare.example", days=None)
        for event_id, item in enumerate((shop, other, bare)):
            await history.record_evaluation(f"e{event_id}", item)
        assert shop.certificate is not None

        async def keys(q: str) -> list[str]:
            return [e.target_key for e in await history.latest(CertificateFilter(q=q))]

        assert await keys("SHOP FRONT") == ["shop.example:443"]
        assert await keys("acme_corp") == ["shop.example:443"]
        assert await keys("acme%corp") == []
        assert await keys("%") == []
        assert await keys("_") == ["shop.example:443"]
        assert await keys(shop.certificate.fingerprint_sha256[10:30].upper()) == ["shop.example:443"]
        assert await keys("test ca") == ["other.example:443", "shop.example:443"]
        assert await keys('"other.example"') == ["other.example:443"]
        assert await keys("bare.example") == ["bare.example:443"]

    async def test_latest_pages_by_target_key(self, under_test: StoreUnderTest) -> None:
        """`after` continues past a target key and `limit` caps the page; no limit lists every target."""
        history = under_test.history
        for host in ("d.example", "b.example", "a.example", "c.example"):
            await history.record_evaluation(host, evaluation(host, days=10))

        async def keys(after: str | None, limit: int | None) -> list[str]:
            return [e.target_key for e in await history.latest(after=after, limit=limit)]

        assert await keys(None, 2) == ["a.example:443", "b.example:443"]
        assert await keys("b.example:443", 2) == ["c.example:443", "d.example:443"]
        assert await keys("d.example:443", 2) == []
        assert await keys(None, None) == ["a.example:443", "b.example:443", "c.example:443", "d.example:443"]
        filtered = await history.latest(CertificateFilter(q="c.example"), after="a.example:443", limit=5)
        assert [e.target_key for e in filtered] == ["c.example:443"]

    async def test_alarm_events_come_in_time_order_by_certificate_and_since(self, under_test: StoreUnderTest) -> None:
        """Alarm events are ordered by when they happened (then event id); `fingerprint` and `since` narrow them."""
        history = under_test.history
        resolved = alarm("a1", "resolved", "ok", NOW)
        raised = alarm("a1", "raised", "critical", NOW - timedelta(hours=3))
        other = alarm("a2", "raised", "warning", NOW - timedelta(hours=3), host="b.example", fingerprint="cd" * 32)
        await history.record_alarm("e3", resolved)
        await history.record_alarm("e2", other)
        await history.record_alarm("e1", raised)
        assert await history.alarm_events() == [("e1", raised), ("e2", other), ("e3", resolved)]
        assert await history.alarm_events(fingerprint="ab" * 32) == [("e1", raised), ("e3", resolved)]
        assert await history.alarm_events(since=NOW - timedelta(hours=3)) == [
            ("e1", raised),
            ("e2", other),
            ("e3", resolved),
        ]
        assert await history.alarm_events(since=NOW - timedelta(hours=1)) == [("e3", resolved)]
        assert await history.alarm_events(fingerprint="ef" * 32) == []
        assert await history.alarm_events(alarm_id="a1") == [("e1", raised), ("e3", resolved)]
        assert await history.alarm_events(alarm_id="nope") == []

    async def test_an_acknowledge_request_is_enqueued_once_per_event_id(self, under_test: StoreUnderTest) -> None:
        """`request_acknowledgement` puts the command in the outbox; the same event id again is refused."""
        request = AcknowledgementRequested(alarm_id="a1", by="jane@example.com", comment="on it", requested_at=NOW)
        command = make_event("acknowledgement.requested.v1", request, source="t", event_id="ack-1")
        assert await under_test.history.request_acknowledgement(command)
        assert not await under_test.history.request_acknowledgement(command.model_copy(update={"time": NOW}))
        assert await under_test.outbox_ids() == ["ack-1"]

    async def test_notifications_keep_the_outcome_in_time_order(self, under_test: StoreUnderTest) -> None:
        """Deliveries come oldest first with their success flag; `alarm_ids` narrows them, an empty list to none."""
        history = under_test.history
        await history.record_notification("n2", sent("a1", NOW, channel="snmp"), ok=False)
        await history.record_notification("n1", sent("a1", NOW - timedelta(minutes=1)), ok=True)
        await history.record_notification("n3", sent("a2", NOW - timedelta(minutes=2)), ok=True)
        assert [(n.alarm_id, n.channel, n.ok) for n in await history.notifications()] == [
            ("a2", "email", True),
            ("a1", "email", True),
            ("a1", "snmp", False),
        ]
        assert [n.channel for n in await history.notifications(["a1"])] == ["email", "snmp"]
        assert await history.notifications([]) == []
        [record] = await history.notifications(["a2"])
        assert (record.alarm_event_id, record.recipient, record.attempt, record.at) == (
            "a2-e1",
            "ops@example.com",
            1,
            NOW - timedelta(minutes=2),
        )

    async def test_a_period_is_reported_and_announced_once(self, under_test: StoreUnderTest) -> None:
        """A second report of the same kind and period is refused under any key, and nothing more is enqueued."""
        history = under_test.history
        day = datetime(2026, 11, 27, tzinfo=UTC)
        report = daily(day)
        assert await history.report_for("daily", day, day + timedelta(days=1)) is None
        assert await record_report(history, report, "daily/2026-11-27") is True
        assert await record_report(history, report, "daily/2026-11-27") is False
        assert await record_report(history, daily(day, key_prefix="again"), "again/2026-11-27") is False
        assert await history.report_for("daily", day, day + timedelta(days=1)) == report
        assert await history.report_for("weekly", day, day + timedelta(days=1)) is None
        assert await under_test.outbox_ids() == ["announce-daily/2026-11-27"]

    async def test_custom_reports_of_one_period_are_told_apart_by_name(self, under_test: StoreUnderTest) -> None:
        """Two custom reports of the same week are both recorded and announced; each name once."""
        history = under_test.history
        start = datetime(2026, 11, 30, tzinfo=UTC)
        end = start + timedelta(days=7)

        def custom(name: str) -> ReportPublished:
            key = f"custom/{name}/2026-W49/status.json"
            return ReportPublished(
                kind="custom",
                name=name,
                period_start=start,
                period_end=end,
                keys=[key],
                location="/r",
                period="2026-W49",
            )

        assert await record_report(history, custom("shop"), "custom/shop/2026-W49")
        assert await record_report(history, custom("web"), "custom/web/2026-W49")
        assert await record_report(history, custom("shop"), "custom/shop/again") is False
        assert await history.report_for("custom", start, end, name="web") == custom("web")
        assert await history.report_for("custom", start, end, name="other") is None
        assert await history.report_for("custom", start, end) is None
        assert await under_test.outbox_ids() == ["announce-custom/shop/2026-W49", "announce-custom/web/2026-W49"]

    async def test_a_taken_key_refuses_another_period(self, under_test: StoreUnderTest) -> None:
        """A report key names one report: recording another period under it is refused."""
        history = under_test.history
        day = datetime(2026, 11, 27, tzinfo=UTC)
        assert await record_report(history, daily(day), "daily/2026-11-27")
        assert await record_report(history, daily(day + timedelta(days=1)), "daily/2026-11-27") is False
        assert await history.reports() == [daily(day)]

    async def test_reports_list_newest_period_first(self, under_test: StoreUnderTest) -> None:
        """Published reports come newest period first, capped by `limit`."""
        history = under_test.history
        days = [datetime(2026, 11, d, tzinfo=UTC) for d in (26, 28, 27)]
        for day in days:
            await record_report(history, daily(day), f"daily/{day:%Y-%m-%d}")
        assert [r.period_start.day for r in await history.reports()] == [28, 27, 26]
        assert [r.period_start.day for r in await history.reports(limit=1)] == [28]
        assert len(await under_test.outbox_ids()) == 3


def rich(host: str, *, at: datetime, fingerprint_of: str | None = None, level: Level = "ok") -> Evaluation:
    """An evaluation of `host` at `at` with every fact the reports read: server, owner, protocols, a chain with
    problems, findings and grade caps; its certificate is the one `fingerprint_of` names (default: `host`'s)."""
    base = evaluation(fingerprint_of or host, days=40, level=level, grade="C", owner="shop-team", evaluated_at=at)
    assert base.certificate is not None and base.security is not None
    return base.model_copy(
        update={
            "target": TargetRef(host=host, port=443, sni=host, server="web-01"),
            "target_key": f"{host}:443",
            "tls": TlsSummary(versions=["TLSv1.0", "TLSv1.2"]),
            "chain": ChainInfo(complete=False, trusted=True, ordered=False),
            "findings": [
                Finding(code="tls.tls10", severity="warning", message="TLS 1.0 offered"),
                Finding(code="chain.incomplete", severity="critical", message="an intermediate is missing"),
            ],
            "security": base.security.model_copy(
                update={"caps": [SecurityCap(grade="B", reason="TLS 1.0 offered"), SecurityCap(grade="B", reason="x")]}
            ),
        }
    )


class TestReportQueriesContract:
    """The slim history reads of the weekly and monthly reports, alike on both adapters."""

    async def test_estate_is_each_targets_latest_evaluation_in_the_window(self, under_test: StoreUnderTest) -> None:
        """Each target's newest evaluation in [since, as_of) comes back as its facts; `since` is inside, `as_of`
        outside, and a target evaluated only outside the window is not in the estate."""
        history = under_test.history
        since, as_of = NOW - timedelta(days=7), NOW
        kept = rich("a.example", at=since)
        newest = rich("b.example", at=as_of - timedelta(seconds=1), level="warning")
        for event_id, item in enumerate(
            (
                kept,
                rich("b.example", at=since + timedelta(hours=1)),
                newest,
                rich("b.example", at=as_of),
                rich("gone.example", at=since - timedelta(seconds=1)),
                evaluation("down.example", days=None, level="warning", evaluated_at=since + timedelta(days=1)),
            )
        ):
            await history.record_evaluation(f"e{event_id}", item)
        down = await history.latest(CertificateFilter(q="down.example"))
        assert await history.estate(as_of, since=since) == [facts_of(kept), facts_of(newest), facts_of(down[0])]
        assert await history.estate(since, since=since - timedelta(days=7)) == [
            facts_of(rich("gone.example", at=since - timedelta(seconds=1)))
        ]

    async def test_estate_facts_carry_what_the_evaluation_said(self, under_test: StoreUnderTest) -> None:
        """The facts read back hold the leaf, key, protocols, chain flags, codes and grade reasons, in order."""
        await under_test.history.record_evaluation("e1", rich("a.example", at=NOW))
        [facts] = await under_test.history.estate(NOW + timedelta(seconds=1), since=NOW)
        assert facts.leaf is not None
        assert (facts.server, facts.owner, facts.grade, facts.level) == ("web-01", "shop-team", "C", "ok")
        assert (facts.leaf.key_type, facts.leaf.key_bits, facts.leaf.key_curve) == ("EC", 256, "secp256r1")
        assert facts.tls_versions == ("TLSv1.0", "TLSv1.2")
        assert (facts.chain_complete, facts.chain_trusted, facts.chain_ordered) == (False, True, False)
        assert facts.finding_codes == ("tls.tls10", "chain.incomplete")
        assert facts.grade_reasons == ("TLS 1.0 offered", "x")

    async def test_first_seen_is_the_first_evaluation_of_certificates_new_in_the_period(
        self, under_test: StoreUnderTest
    ) -> None:
        """A certificate first evaluated in [start, end) comes back as its first evaluation; one seen before
        start, or first at end, does not."""
        history = under_test.history
        start, end = NOW - timedelta(days=7), NOW
        first = rich("new.example", at=start)
        for event_id, item in enumerate(
            (
                rich("new.example", at=start + timedelta(days=2)),
                first,
                rich("moved.example", at=start + timedelta(days=1), fingerprint_of="new.example"),
                rich("old.example", at=start - timedelta(seconds=1)),
                rich("old.example", at=start + timedelta(days=1)),
                rich("later.example", at=end),
                evaluation("down.example", days=None, evaluated_at=start + timedelta(days=1)),
            )
        ):
            await history.record_evaluation(f"e{event_id}", item)
        assert await history.first_seen(start, end) == [facts_of(first)]

    async def test_alarm_steps_are_the_periods_transitions_and_the_raise_of_each_resolve(
        self, under_test: StoreUnderTest
    ) -> None:
        """Raises, acknowledgements and resolves in [start, end) come in time order, with the earlier raise of an
        alarm resolved in the period; reminders, and raises before start of alarms still open, do not."""
        history = under_test.history
        start, end = NOW - timedelta(days=7), NOW
        old_raise = alarm("a1", "raised", "critical", start - timedelta(days=3))
        resolve = alarm("a1", "resolved", "ok", start + timedelta(days=1))
        raise_b = alarm("b1", "raised", "warning", start, host="b.example")
        ack_b = alarm(
            "b1",
            "acknowledged",
            "warning",
            start + timedelta(hours=2),
            host="b.example",
            acknowledgement=Acknowledgement(by="jane", at=start + timedelta(hours=2)),
        )
        for event_id, item in (
            ("e1", old_raise),
            ("e2", resolve),
            ("e3", raise_b),
            ("e4", ack_b),
            ("e5", alarm("b1", "reminded", "warning", start + timedelta(days=1), host="b.example")),
            ("e6", alarm("c1", "raised", "info", start - timedelta(days=1), host="c.example")),
            ("e7", alarm("d1", "raised", "info", end, host="d.example")),
        ):
            await history.record_alarm(event_id, item)
        assert await history.alarm_steps(start, end) == [
            alarm_step(old_raise),
            alarm_step(raise_b),
            alarm_step(ack_b),
            alarm_step(resolve),
        ]

    async def test_daily_levels_count_each_target_by_its_last_evaluation_of_the_day(
        self, under_test: StoreUnderTest
    ) -> None:
        """Per UTC day of the period with evaluations: a target evaluated twice counts once, at its later level;
        evaluations outside the period do not count."""
        history = under_test.history
        day = datetime(2026, 11, 20, tzinfo=UTC)
        for event_id, (host, level, at) in enumerate(
            (
                ("a.example", "critical", day + timedelta(hours=1)),
                ("a.example", "ok", day + timedelta(hours=23)),
                ("b.example", "ok", day + timedelta(hours=5)),
                ("a.example", "warning", day + timedelta(days=1, hours=1)),
                ("a.example", "critical", day - timedelta(seconds=1)),
                ("b.example", "critical", day + timedelta(days=2)),
            )
        ):
            await history.record_evaluation(f"e{event_id}", evaluation(host, days=10, level=level, evaluated_at=at))
        assert await history.daily_levels(day, day + timedelta(days=2)) == [
            DayLevels(day=day.date(), counts={"ok": 2}),
            DayLevels(day=(day + timedelta(days=1)).date(), counts={"warning": 1}),
        ]
