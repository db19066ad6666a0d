"""Unchanged evaluations are sightings of a run, one contract on both history adapters: what is recorded, that a
redelivery is not counted, what every reader sees of a run, and what pruning by retention deletes."""

from datetime import date, datetime, timedelta

from services.reporter.domain.facts import DayLevels
from shared.events import Evaluation
from shared.events.evaluation import Level
from tests.integration.reporter import test_history_contract as contract
from tests.integration.reporter.test_history_contract import StoreUnderTest, sent
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

# The contract's fixtures: each case runs once on the in-memory history and once on PostgreSQL.
pool_or_none = contract.pool_or_none
under_test = contract.under_test

#: Midnight UTC of NOW's day, the hour every sighting below is counted from.
DAY = NOW.replace(hour=0, minute=0)
HOUR = timedelta(hours=1)
BASE = evaluation("a.example", days=90, evaluated_at=DAY)
assert BASE.certificate is not None
FINGERPRINT = BASE.certificate.fingerprint_sha256


def seen(at: datetime, *, level: Level = "ok", of: Evaluation = BASE) -> Evaluation:
    """`of` evaluated again at `at` (its days remaining counted down), at `level`: unchanged unless the level is."""
    assert of.certificate is not None and of.expiry is not None
    days = (of.certificate.not_after - at).total_seconds() / 86400
    return of.model_copy(
        update={
            "observed_at": at - timedelta(seconds=3),
            "evaluated_at": at,
            "expiry": of.expiry.model_copy(update={"days_remaining": days}),
            "alarm": of.alarm.model_copy(update={"level": level}),
        }
    )


async def record_hourly(under_test: StoreUnderTest, hours: range, *, level: Level = "ok", prefix: str = "e") -> None:
    """One sighting of BASE per hour after DAY, at `level`."""
    for hour in hours:
        await under_test.history.record_evaluation(f"{prefix}{hour}", seen(DAY + hour * HOUR, level=level))


class TestRuns:
    """Recording unchanged evaluations, and the readers after it."""

    async def test_unchanged_evaluations_are_one_run_seen_at_its_last_sighting(
        self, under_test: StoreUnderTest
    ) -> None:
        """24 hourly evaluations that differ only in time read back as one, at the last sighting, seen 24 times."""
        await record_hourly(under_test, range(24))
        last = seen(DAY + 23 * HOUR)
        history = under_test.history
        assert await history.latest() == [last]
        assert await history.evaluations_of(FINGERPRINT) == [last]
        [row] = await history.observations_of(FINGERPRINT, limit=10)
        assert (row.evaluated_at, row.first_seen_at, row.seen_count) == (last.evaluated_at, DAY, 24)
        assert last.expiry is not None and row.days_remaining == last.expiry.days_remaining
        [target] = await history.certificate_rows(limit=10)
        assert target.evaluated_at == last.evaluated_at

    async def test_a_changed_evaluation_starts_a_run(self, under_test: StoreUnderTest) -> None:
        """A level change is a new run: the observations list both runs, the level changes show each at its start."""
        await record_hourly(under_test, range(10))
        await record_hourly(under_test, range(10, 20), level="warning")
        history = under_test.history
        runs = await history.observations_of(FINGERPRINT, limit=10)
        assert [(r.level, r.evaluated_at, r.seen_count) for r in runs] == [
            ("warning", DAY + 19 * HOUR, 10),
            ("ok", DAY + 9 * HOUR, 10),
        ]
        changes = await history.observations_of(FINGERPRINT, limit=10, changes_only=True)
        assert [(r.level, r.evaluated_at) for r in changes] == [("warning", DAY + 10 * HOUR), ("ok", DAY)]
        assert [e.alarm.level for e in await history.evaluations_of(FINGERPRINT)] == ["warning", "ok"]

    async def test_a_redelivered_sighting_is_not_counted(self, under_test: StoreUnderTest) -> None:
        """The same event id delivered again answers False and leaves the run's count and last sighting alone."""
        await record_hourly(under_test, range(3))
        assert await under_test.history.record_evaluation("e1", seen(DAY + 5 * HOUR)) is False
        [row] = await under_test.history.observations_of(FINGERPRINT, limit=10)
        assert (row.seen_count, row.evaluated_at) == (3, DAY + 2 * HOUR)

    async def test_a_late_sighting_is_counted_without_moving_the_last(self, under_test: StoreUnderTest) -> None:
        """An unchanged evaluation older than the run's last sighting adds to the count; the last stays the last."""
        await record_hourly(under_test, range(0, 6, 2))
        await under_test.history.record_evaluation("late", seen(DAY + 3 * HOUR))
        [row] = await under_test.history.observations_of(FINGERPRINT, limit=10)
        assert (row.seen_count, row.evaluated_at) == (4, DAY + 4 * HOUR)
        assert await under_test.history.latest() == [seen(DAY + 4 * HOUR)]

    async def test_the_estate_of_a_moment_inside_a_run_is_its_sighting_before_it(
        self, under_test: StoreUnderTest
    ) -> None:
        """The facts of a target as of a moment between two hourly sightings carry the one just before it."""
        await record_hourly(under_test, range(24))
        history = under_test.history
        [inside] = await history.estate(DAY + 5 * HOUR + timedelta(minutes=30), since=DAY + 5 * HOUR)
        assert inside.evaluated_at == DAY + 5 * HOUR
        assert await history.estate(DAY + 5 * HOUR + timedelta(minutes=30), since=DAY + 5 * HOUR + HOUR) == []
        [after] = await history.estate(DAY + 2 * timedelta(days=1), since=DAY)
        assert after.evaluated_at == DAY + 23 * HOUR

    async def test_daily_levels_count_a_run_on_each_day_it_was_seen(self, under_test: StoreUnderTest) -> None:
        """A run over three days counts on each; a change during the third day counts by the day's last sighting."""
        await record_hourly(under_test, range(0, 60, 6))
        await record_hourly(under_test, range(62, 64), level="critical", prefix="c")
        days = await under_test.history.daily_levels(DAY, DAY + timedelta(days=4))
        assert days == [
            DayLevels(day=date(2026, 11, 27), counts={"ok": 1}),
            DayLevels(day=date(2026, 11, 28), counts={"ok": 1}),
            DayLevels(day=date(2026, 11, 29), counts={"critical": 1}),
        ]

    async def test_a_run_with_a_gap_of_a_day_is_not_counted_on_that_day(self, under_test: StoreUnderTest) -> None:
        """Sightings every 48 hours: the days between them have none."""
        await record_hourly(under_test, range(0, 96, 48))
        days = await under_test.history.daily_levels(DAY, DAY + timedelta(days=4))
        assert [d.day for d in days] == [date(2026, 11, 27), date(2026, 11, 29)]

    async def test_a_certificate_is_first_seen_at_the_first_sighting_of_its_first_run(
        self, under_test: StoreUnderTest
    ) -> None:
        """A run started before a period is not new in it; one started in it is, at its first sighting."""
        await record_hourly(under_test, range(30))
        [first] = await under_test.history.first_seen(DAY, DAY + timedelta(days=1))
        assert first.evaluated_at == DAY
        assert await under_test.history.first_seen(DAY + timedelta(days=1), DAY + timedelta(days=2)) == []


class TestPruning:
    """What `prune` deletes, by the clock it is given."""

    async def test_runs_last_seen_before_the_retention_go_and_the_latest_stays(
        self, under_test: StoreUnderTest
    ) -> None:
        """An old run goes, the target's latest run stays however old its first sighting, the counts are kept."""
        await record_hourly(under_test, range(3), level="warning", prefix="w")
        await record_hourly(under_test, range(3, 48))
        history = under_test.history
        deleted = await history.prune(DAY + timedelta(days=2), retention=timedelta(days=1))
        assert deleted >= 1
        [row] = await history.observations_of(FINGERPRINT, limit=10)
        assert (row.level, row.first_seen_at, row.seen_count) == ("ok", DAY + 3 * HOUR, 45)
        assert await history.latest() == [seen(DAY + 47 * HOUR)]

    async def test_a_target_not_seen_for_the_retention_leaves_the_dashboard(self, under_test: StoreUnderTest) -> None:
        """A target whose latest evaluation is older than the retention goes, with its runs; a recent one stays."""
        await record_hourly(under_test, range(3))
        recent = evaluation("b.example", days=50, evaluated_at=DAY + timedelta(days=3))
        await under_test.history.record_evaluation("b", recent)
        await under_test.history.prune(DAY + timedelta(days=3), retention=timedelta(days=1))
        assert await under_test.history.latest() == [recent]
        assert await under_test.history.evaluations_of(FINGERPRINT) == []
        assert await under_test.history.count_certificates() == 1

    async def test_alarms_resolved_before_the_retention_go_with_their_history(self, under_test: StoreUnderTest) -> None:
        """A resolved alarm older than the retention goes with its transitions and deliveries; an open one stays."""
        history = under_test.history
        await history.record_alarm("r1", alarm("old", "raised", "warning", DAY))
        await history.record_alarm("r2", alarm("old", "resolved", "ok", DAY + HOUR))
        await history.record_notification("n1", sent("old", DAY), ok=True)
        await history.record_alarm("o1", alarm("open", "raised", "critical", DAY))
        await history.prune(DAY + timedelta(days=3), retention=timedelta(days=1))
        assert [a.alarm_id for a in await history.alarm_rows(limit=10)] == ["open"]
        assert [a.alarm_id for _, a in await history.alarm_events()] == ["open"]
        assert await history.notifications() == []

    async def test_nothing_within_the_retention_goes(self, under_test: StoreUnderTest) -> None:
        """Pruning with a retention longer than the history deletes nothing."""
        await record_hourly(under_test, range(5))
        assert await under_test.history.prune(DAY + timedelta(days=1), retention=timedelta(days=400)) == 0
        [row] = await under_test.history.observations_of(FINGERPRINT, limit=10)
        assert row.seen_count == 5
