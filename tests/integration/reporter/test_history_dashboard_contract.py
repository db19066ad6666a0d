"""The dashboard's reads, one contract on both history adapters: rows, orders, keyset pages, filters, counts,
the expiration timeline, alarm rows and a certificate's observations."""

from datetime import UTC, date, datetime, timedelta

from services.reporter.domain.estate import AlarmKey, RowKey, target_row
from services.reporter.ports import AlarmFilter, CertificateFilter, CertificateSort, HistoryStore
from shared.events import Acknowledgement, AlarmEvent, Evaluation, OwnerRef, TargetRef
from shared.events.evaluation import Grade, Level
from tests.integration.reporter import test_history_contract as contract
from tests.integration.reporter.test_history_contract import StoreUnderTest
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

# The contract's fixtures: each case runs once on the in-memory history and once on PostgreSQL.
pool_or_none = contract.pool_or_none
under_test = contract.under_test


def target(
    host: str,
    *,
    days: float | None,
    level: Level = "ok",
    grade: Grade = "A",
    owner: str | None = None,
    server: str | None = None,
    issuer: str | None = None,
    evaluated_at: datetime = NOW - timedelta(minutes=5),
) -> Evaluation:
    """An evaluation of `host:443` as the factory makes it, on `server` and issued by `issuer` when given."""
    made = evaluation(host, days=days, level=level, grade=grade, owner=owner, evaluated_at=evaluated_at)
    update: dict[str, object] = {"target": TargetRef(host=host, port=443, sni=host, server=server)}
    if issuer is not None and made.certificate is not None:
        update["certificate"] = made.certificate.model_copy(update={"issuer": issuer})
    return made.model_copy(update=update)


ESTATE = [
    target("ok.example", days=200, level="ok", grade="A+", owner="platform", server="web-01"),
    target("soon.example", days=5, level="critical", grade="B", owner="shop", server="web-01"),
    target("gone.example", days=-2, level="critical", grade="F", owner="shop", issuer="CN=Other CA"),
    target("month.example", days=20, level="warning", owner="shop", server="web-02"),
    target("down.example", days=None, level="warning"),
    target("quarter.example", days=60, level="info", issuer="CN=Other CA"),
]


async def store(history: HistoryStore, evaluations: list[Evaluation]) -> None:
    """Record each evaluation under an event id of its own."""
    for n, item in enumerate(evaluations):
        await history.record_evaluation(f"eval-{n}-{item.target_key}-{item.evaluated_at.isoformat()}", item)


def hosts(rows: list) -> list[str]:  # type: ignore[type-arg]
    """The host part of each row's target key."""
    return [r.target_key.removesuffix(":443") for r in rows]


def owned(event: AlarmEvent, *names: str) -> AlarmEvent:
    """The alarm event with owners `names`, each chosen by the default rule."""
    return event.model_copy(update={"owners": [OwnerRef(name=n, rule="default") for n in names]})


class TestCertificateRowsContract:
    """Target rows: what they carry, their orders and pages, and the filters."""

    async def test_a_row_carries_what_the_latest_evaluation_said(self, under_test: StoreUnderTest) -> None:
        """Each row equals `target_row` of the target's latest evaluation, even after an older one arrives late."""
        history = under_test.history
        newer = target("a.example", days=10, level="warning", grade="B", owner="shop", server="web-01")
        older = target("a.example", days=11, level="ok", evaluated_at=NOW - timedelta(days=1))
        await store(history, [newer, older])
        assert await history.certificate_rows(limit=10) == [target_row(newer)]

    async def test_rows_come_most_urgent_soonest_expiry_or_target_first(self, under_test: StoreUnderTest) -> None:
        """Urgency is level then expiry; expiry puts targets without a certificate last; target is by key."""
        history = under_test.history
        await store(history, ESTATE)
        assert hosts(await history.certificate_rows(limit=10)) == [
            "gone.example",
            "soon.example",
            "month.example",
            "down.example",
            "quarter.example",
            "ok.example",
        ]
        assert hosts(await history.certificate_rows(sort="expiry", limit=10)) == [
            "gone.example",
            "soon.example",
            "month.example",
            "quarter.example",
            "ok.example",
            "down.example",
        ]
        assert hosts(await history.certificate_rows(sort="target", limit=2)) == ["down.example", "gone.example"]

    async def test_pages_continue_after_the_last_rows_key_in_every_order(self, under_test: StoreUnderTest) -> None:
        """Walking pages of two with each page's last key lists every target once, in order, for each sort."""
        history = under_test.history
        await store(history, ESTATE)
        sorts: tuple[CertificateSort, ...] = ("urgency", "expiry", "target")
        for sort in sorts:
            walked: list[str] = []
            after: RowKey | None = None
            while page := await history.certificate_rows(sort=sort, after=after, limit=2):
                walked += hosts(page)
                after = page[-1].key
            assert walked == hosts(await history.certificate_rows(sort=sort, limit=100))

    async def test_filters_narrow_rows_and_counts_alike(self, under_test: StoreUnderTest) -> None:
        """Issuer, fingerprint, owner, server, grade, level, text and the notAfter range combine with AND."""
        history = under_test.history
        await store(history, ESTATE)
        soon = ESTATE[1].certificate
        assert soon is not None
        cases = {
            CertificateFilter(issuer="CN=Other CA"): ["gone.example", "quarter.example"],
            CertificateFilter(fingerprint=soon.fingerprint_sha256): ["soon.example"],
            CertificateFilter(owner="shop", level="critical"): ["gone.example", "soon.example"],
            CertificateFilter(server="web-01", grade="A+"): ["ok.example"],
            CertificateFilter(q="MONTH"): ["month.example"],
            CertificateFilter(expires_from=NOW, expires_before=NOW + timedelta(days=20)): ["soon.example"],
            CertificateFilter(expires_before=NOW): ["gone.example"],
            CertificateFilter(expires_from=NOW + timedelta(days=60)): ["ok.example", "quarter.example"],
            CertificateFilter(issuer="CN=nobody"): [],
        }
        for where, expected in cases.items():
            assert hosts(await history.certificate_rows(where, sort="target", limit=10)) == expected, where
            assert await history.count_certificates(where) == len(expected), where
            assert [e.target_key for e in await history.latest(where)] == [f"{h}:443" for h in expected], where
        assert await history.count_certificates() == len(ESTATE)

    async def test_the_range_bounds_are_inclusive_then_exclusive(self, under_test: StoreUnderTest) -> None:
        """A certificate expiring at the range's start is in it, one expiring at its end is not."""
        history = under_test.history
        await store(history, [target("edge.example", days=10)])
        at = NOW + timedelta(days=10)
        assert await history.count_certificates(CertificateFilter(expires_from=at)) == 1
        assert await history.count_certificates(CertificateFilter(expires_before=at)) == 0
        assert await history.count_certificates(CertificateFilter(expires_before=at + timedelta(seconds=1))) == 1


class TestEstateContract:
    """Counts, facets and the expiration timeline."""

    async def test_counts_list_every_level_and_grade(self, under_test: StoreUnderTest) -> None:
        """Targets per level and grade (zeros included), distinct certificates, expired ones, unresolved alarms."""
        history = under_test.history
        await store(
            history, [*ESTATE, target("twin.example", days=5).model_copy(update={"certificate": ESTATE[1].certificate})]
        )
        await history.record_alarm("a1-e1", alarm("a1", "raised", "critical", NOW))
        ack = Acknowledgement(by="jane", at=NOW)
        await history.record_alarm("a2-e1", alarm("a2", "raised", "warning", NOW, host="b.example"))
        await history.record_alarm(
            "a2-e2", alarm("a2", "acknowledged", "warning", NOW, host="b.example", acknowledgement=ack)
        )
        await history.record_alarm("a3-e1", alarm("a3", "resolved", "ok", NOW, host="c.example"))
        counts = await history.estate_counts(NOW)
        assert counts.targets == 7
        assert counts.certificates == 5
        assert counts.expired == 1
        assert counts.by_level == {"critical": 2, "warning": 2, "info": 1, "ok": 2}
        assert counts.by_grade == {"A+": 1, "A": 3, "A-": 0, "B": 1, "C": 0, "D": 0, "E": 0, "F": 1}
        assert (counts.open_alarms, counts.acknowledged_alarms) == (1, 1)

    async def test_facets_are_the_distinct_values_sorted_and_capped(self, under_test: StoreUnderTest) -> None:
        """Owners, servers and issuers each once, sorted; `limit` keeps the first few."""
        history = under_test.history
        await store(history, ESTATE)
        facets = await history.facets()
        assert facets.owners == ("platform", "shop")
        assert facets.servers == ("web-01", "web-02")
        assert facets.issuers == ("CN=Other CA", "CN=certmon Test CA")
        assert (await history.facets(limit=1)).servers == ("web-01",)

    async def test_expirations_are_counted_per_utc_day_and_month_by_level(self, under_test: StoreUnderTest) -> None:
        """A certificate is counted on the UTC day and month of its notAfter, within `[start, end)` only."""
        history = under_test.history
        late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
        evaluations = [
            target("a.example", days=(late - NOW).total_seconds() / 86400, level="warning"),
            target("b.example", days=(late - NOW).total_seconds() / 86400 + 1 / 24, level="critical"),
            target("c.example", days=(late - NOW).total_seconds() / 86400, level="critical"),
            target("d.example", days=400),
        ]
        await store(history, evaluations)
        start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        by_day = await history.expiry_counts(start, end, unit="day")
        assert [(c.start, c.level, c.count) for c in by_day] == [
            (date(2026, 11, 30), "critical", 1),
            (date(2026, 11, 30), "warning", 1),
            (date(2026, 12, 1), "critical", 1),
        ]
        by_month = await history.expiry_counts(start, end, unit="month")
        assert [(c.start, c.level, c.count) for c in by_month] == [
            (date(2026, 11, 1), "critical", 1),
            (date(2026, 11, 1), "warning", 1),
            (date(2026, 12, 1), "critical", 1),
        ]

    async def test_expiring_keeps_the_most_urgent_few_of_each_day(self, under_test: StoreUnderTest) -> None:
        """At most `per_day` targets of each UTC day, the most urgent first, listed by notAfter."""
        history = under_test.history
        evaluations = [
            target("a.example", days=3, level="ok"),
            target("b.example", days=3.01, level="critical"),
            target("c.example", days=3.02, level="warning"),
            target("d.example", days=10, level="ok"),
            target("e.example", days=100, level="critical"),
        ]
        await store(history, evaluations)
        rows = await history.expiring(NOW, NOW + timedelta(days=90), per_day=2)
        assert hosts(rows) == ["b.example", "c.example", "d.example"]


def step(alarm_id: str, transition: str, level: Level, minutes: int, **kwargs: object) -> AlarmEvent:
    """An alarm event `minutes` after NOW."""
    return alarm(alarm_id, transition, level, NOW + timedelta(minutes=minutes), **kwargs)  # type: ignore[arg-type]


class TestAlarmRowsContract:
    """One row per alarm, its filters, orders and pages."""

    async def test_a_row_is_the_latest_transition_and_the_first_raise(self, under_test: StoreUnderTest) -> None:
        """Events arriving out of order leave the row at the latest transition, raised at the earliest one."""
        history = under_test.history
        ack = Acknowledgement(by="jane@example.com", at=NOW + timedelta(minutes=5), comment="on it")
        await history.record_alarm("e2", owned(step("a1", "acknowledged", "critical", 5, acknowledgement=ack), "shop"))
        await history.record_alarm("e1", owned(step("a1", "raised", "critical", 0), "shop", "web"))
        [row] = await history.alarm_rows(limit=10)
        assert (row.alarm_id, row.event_id, row.state, row.level, row.trigger) == (
            "a1",
            "e2",
            "acknowledged",
            "critical",
            "expiry",
        )
        assert (row.target_key, row.fingerprint, row.owners) == ("a.example:443", "ab" * 32, ("shop",))
        assert (row.acknowledged_by, row.acknowledged_at) == ("jane@example.com", ack.at)
        assert (row.raised_at, row.updated_at) == (NOW, NOW + timedelta(minutes=5))
        await history.record_alarm("e3", step("a1", "resolved", "ok", 9))
        [row] = await history.alarm_rows(limit=10)
        assert (row.state, row.event_id, row.acknowledged_by, row.owners) == ("resolved", "e3", None, ())

    async def test_alarms_filter_by_state_level_owner_and_time(self, under_test: StoreUnderTest) -> None:
        """States, level and owner narrow the list; a time range keeps alarms alive at some moment of it."""
        history = under_test.history
        await history.record_alarm("o1", owned(step("open", "raised", "critical", 0, host="o.example"), "shop"))
        await history.record_alarm("w1", owned(step("warn", "raised", "warning", 10, host="w.example"), "web", "shop"))
        await history.record_alarm("g1", step("gone", "raised", "info", -120, host="g.example"))
        await history.record_alarm("g2", step("gone", "resolved", "ok", -60, host="g.example"))

        async def ids(where: AlarmFilter) -> list[str]:
            rows = await history.alarm_rows(where, limit=10)
            assert await history.count_alarms(where) == len(rows)
            return sorted(r.alarm_id for r in rows)

        assert await ids(AlarmFilter()) == ["gone", "open", "warn"]
        assert await ids(AlarmFilter(states=("open", "acknowledged"))) == ["open", "warn"]
        assert await ids(AlarmFilter(states=("resolved",))) == ["gone"]
        assert await ids(AlarmFilter(level="critical")) == ["open"]
        assert await ids(AlarmFilter(owner="shop")) == ["open", "warn"]
        assert await ids(AlarmFilter(owner="web", level="warning")) == ["warn"]
        assert await ids(AlarmFilter(owner="sho")) == []
        assert await ids(AlarmFilter(active_from=NOW - timedelta(minutes=60))) == ["gone", "open", "warn"]
        assert await ids(AlarmFilter(active_from=NOW - timedelta(minutes=59))) == ["open", "warn"]
        assert await ids(AlarmFilter(active_until=NOW + timedelta(minutes=10))) == ["gone", "open"]
        assert await ids(AlarmFilter(active_from=NOW - timedelta(minutes=200), active_until=NOW)) == ["gone"]

    async def test_alarms_come_latest_first_or_most_severe_first_and_page(self, under_test: StoreUnderTest) -> None:
        """`recent` orders by the last change, `severity` by level first; pages go on after the last key."""
        history = under_test.history
        plan: list[tuple[str, Level, int]] = [
            ("a", "info", 4),
            ("b", "critical", 1),
            ("c", "warning", 3),
            ("d", "critical", 2),
            ("e", "warning", 3),
        ]
        for alarm_id, level, minutes in plan:
            await history.record_alarm(
                f"{alarm_id}-1", step(alarm_id, "raised", level, minutes, host=f"{alarm_id}.example")
            )
        expected = {"recent": ["a", "e", "c", "d", "b"], "severity": ["d", "b", "e", "c", "a"]}
        for order, ids in expected.items():
            assert [r.alarm_id for r in await history.alarm_rows(order=order, limit=10)] == ids  # type: ignore[arg-type]
            walked: list[str] = []
            after: AlarmKey | None = None
            while page := await history.alarm_rows(order=order, after=after, limit=2):  # type: ignore[arg-type]
                walked += [r.alarm_id for r in page]
                after = page[-1].key
            assert walked == ids

    async def test_alarm_events_of_some_alarms(self, under_test: StoreUnderTest) -> None:
        """`alarm_ids` keeps the events of those alarms, in time order; an empty list keeps none."""
        history = under_test.history
        first, second, other = (
            step("a1", "raised", "critical", 0),
            step("a2", "raised", "warning", 1),
            step("a3", "raised", "info", 2),
        )
        for event_id, event in (("e1", first), ("e2", second), ("e3", other)):
            await history.record_alarm(event_id, event)
        assert await history.alarm_events(alarm_ids=["a2", "a1"]) == [("e1", first), ("e2", second)]
        assert await history.alarm_events(alarm_ids=[]) == []


class TestObservationsContract:
    """A certificate's evaluations as slim rows."""

    async def test_observations_are_newest_first_and_changes_keep_each_targets_first(
        self, under_test: StoreUnderTest
    ) -> None:
        """Every evaluation of the certificate, newest first, capped; `changes_only` keeps a target's first
        evaluation and those whose level moved."""
        history = under_test.history
        plan: list[tuple[str, int, Level]] = [
            ("a.example", 1, "ok"),
            ("a.example", 2, "ok"),
            ("a.example", 3, "warning"),
            ("a.example", 4, "warning"),
            ("b.example", 5, "critical"),
            ("a.example", 6, "ok"),
        ]
        base = target("a.example", days=30)
        for n, (host, hours, level) in enumerate(plan):
            made = target(host, days=30, level=level, evaluated_at=NOW - timedelta(hours=10 - hours))
            await history.record_evaluation(f"o{n}", made.model_copy(update={"certificate": base.certificate}))
        await store(history, [target("other.example", days=3)])
        assert base.certificate is not None
        fingerprint = base.certificate.fingerprint_sha256
        rows = await history.observations_of(fingerprint, limit=3)
        assert [(r.target_key, r.level) for r in rows] == [
            ("a.example:443", "ok"),
            ("b.example:443", "critical"),
            ("a.example:443", "warning"),
        ]
        assert rows[0].evaluated_at == NOW - timedelta(hours=4)
        assert (rows[0].grade, rows[0].days_remaining, rows[0].reachable) == ("A", 30, True)
        changes = await history.observations_of(fingerprint, limit=10, changes_only=True)
        assert [(r.target_key, r.evaluated_at) for r in changes] == [
            ("a.example:443", NOW - timedelta(hours=4)),
            ("b.example:443", NOW - timedelta(hours=5)),
            ("a.example:443", NOW - timedelta(hours=7)),
            ("a.example:443", NOW - timedelta(hours=9)),
        ]
        assert await history.observations_of("00" * 32, limit=10) == []
