"""The weekly trend report: what changed between the estate at the start and at the end of a week."""

import hashlib
from datetime import UTC, date, datetime, timedelta

from services.reporter.domain.facts import AlarmStep, DayLevels, TargetFacts, alarm_step, facts_of
from services.reporter.domain.trends import WeeklyReport, build_weekly_report, expirations_by_week
from shared.events import KeyInfo
from shared.events.evaluation import Grade, Level
from tests.unit.reporter.reporter_factories import NOW as FACTORY_NOW
from tests.unit.reporter.reporter_factories import alarm, evaluation

START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday
END = START + timedelta(days=7)
NOW = END + timedelta(hours=6)


def target(
    host: str,
    *,
    at: datetime,
    cert: str | None = None,
    expires: datetime | None = None,
    level: Level = "ok",
    grade: Grade = "A",
    key: KeyInfo | None = None,
    spki: str | None = None,
) -> TargetFacts:
    """The facts of `host:443` evaluated at `at`, serving certificate `cert` (named by a host; None: unreachable)
    that expires at `expires` (default: in 200 days)."""
    days = None if cert is None else ((expires or at + timedelta(days=200)) - FACTORY_NOW).total_seconds() / 86400
    base = evaluation(cert or host, days=days, level=level, grade=grade, owner="web-team", evaluated_at=at)
    update: dict[str, object] = {"target": base.target.model_copy(update={"host": host}), "target_key": f"{host}:443"}
    if base.certificate is not None:
        certificate: dict[str, object] = {"spki_sha256": spki}
        if key is not None:
            certificate["key"] = key
        update["certificate"] = base.certificate.model_copy(update=certificate)
    return facts_of(base.model_copy(update=update))


def fingerprint(cert: str) -> str:
    """The fingerprint the factories give the certificate named `cert`."""
    return hashlib.sha256(cert.encode()).hexdigest()


def weekly(
    at_start: list[TargetFacts],
    at_end: list[TargetFacts],
    *,
    first_seen: list[TargetFacts] | None = None,
    steps: list[AlarmStep] | None = None,
    levels: list[DayLevels] | None = None,
) -> WeeklyReport:
    """The weekly report of START..END from these inputs."""
    return build_weekly_report(
        at_start, at_end, first_seen or [], steps or [], levels or [], start=START, end=END, now=NOW
    )


def test_a_target_serving_another_certificate_is_renewed_and_the_key_kind_says_if_it_was_rekeyed() -> None:
    """A new certificate with another key size is a new key; one with the same key kind cannot be told apart
    from a reused key and says so; a target serving the same certificate is not renewed."""
    rsa = KeyInfo(type="RSA", bits=2048)
    report = weekly(
        [
            target("a.example", at=START - timedelta(hours=1), cert="a-old"),
            target("b.example", at=START - timedelta(hours=1), cert="b-old", key=rsa),
            target("c.example", at=START - timedelta(hours=1), cert="c"),
        ],
        [
            target("a.example", at=END - timedelta(hours=1), cert="a-new"),
            target("b.example", at=END - timedelta(hours=1), cert="b-new", key=KeyInfo(type="RSA", bits=3072)),
            target("c.example", at=END - timedelta(hours=1), cert="c"),
        ],
    )
    assert [(r.target, r.key_change) for r in report.renewed] == [
        ("a.example:443", "key_kind_unchanged"),
        ("b.example:443", "new_key"),
    ]
    first = report.renewed[0]
    assert (first.fingerprint, first.previous_fingerprint) == (fingerprint("a-new"), fingerprint("a-old"))
    assert first.owner == "web-team"


def test_the_key_fingerprints_tell_a_reissue_with_the_same_key_from_a_new_key() -> None:
    """With the keys' SPKI fingerprints, a renewal keeping the key is `same_key` and one changing it `new_key`,
    whatever their kind."""
    report = weekly(
        [
            target("a.example", at=START - timedelta(hours=1), cert="a-old", spki="k1"),
            target("b.example", at=START - timedelta(hours=1), cert="b-old", spki="k2"),
        ],
        [
            target("a.example", at=END - timedelta(hours=1), cert="a-new", spki="k1"),
            target("b.example", at=END - timedelta(hours=1), cert="b-new", spki="k3"),
        ],
    )
    assert [(r.target, r.key_change) for r in report.renewed] == [
        ("a.example:443", "same_key"),
        ("b.example:443", "new_key"),
    ]


def test_an_unreachable_target_at_either_end_is_not_a_renewal() -> None:
    """Without a certificate at the start or at the end there is nothing to compare."""
    report = weekly(
        [target("a.example", at=START - timedelta(hours=1), cert="a-old")],
        [target("a.example", at=END - timedelta(hours=1), cert=None, level="warning")],
    )
    assert report.renewed == []


def test_targets_not_evaluated_in_the_week_are_removed_and_new_ones_added() -> None:
    """A target in the estate at the start but absent at the end is removed; the reverse is added."""
    report = weekly(
        [target("gone.example", at=START - timedelta(days=2), cert="gone"), target("stay.example", at=START, cert="s")],
        [target("stay.example", at=END - timedelta(days=1), cert="s"), target("new.example", at=START, cert="n")],
    )
    assert [(t.target, t.evaluated_at) for t in report.removed] == [("gone.example:443", START - timedelta(days=2))]
    assert [t.target for t in report.added] == ["new.example:443"]


def test_certificates_expiring_in_the_week_are_listed_with_whether_they_are_still_served() -> None:
    """notAfter inside [start, end) counts, at either end of the week; the bounds are start in, end out."""
    report = weekly(
        [
            target("renewed.example", at=START - timedelta(hours=1), cert="r-old", expires=START),
            target("stuck.example", at=START - timedelta(hours=1), cert="stuck", expires=END - timedelta(seconds=1)),
            target("later.example", at=START - timedelta(hours=1), cert="later", expires=END),
        ],
        [
            target("renewed.example", at=END - timedelta(hours=1), cert="r-new"),
            target("stuck.example", at=END - timedelta(hours=1), cert="stuck", expires=END - timedelta(seconds=1)),
            target("later.example", at=END - timedelta(hours=1), cert="later", expires=END),
        ],
    )
    assert [(e.target, e.still_served) for e in report.expired] == [
        ("renewed.example:443", False),
        ("stuck.example:443", True),
    ]


def test_first_seen_lists_each_new_certificate_where_and_when_it_was_first_seen() -> None:
    """First evaluations come in the order they happened; one without a certificate cannot appear."""
    report = weekly(
        [],
        [],
        first_seen=[
            target("b.example", at=START + timedelta(days=2), cert="b"),
            target("a.example", at=START + timedelta(days=1), cert="a"),
        ],
    )
    assert [(c.target, c.seen_at) for c in report.first_seen] == [
        ("a.example:443", START + timedelta(days=1)),
        ("b.example:443", START + timedelta(days=2)),
    ]


def test_alarms_count_raises_acknowledgements_and_resolves_with_the_median_time_to_resolve() -> None:
    """Transitions in the week are counted; a resolve measures from its raise, even one before the week."""
    steps = [
        alarm_step(alarm("old", "raised", "critical", START - timedelta(hours=10))),
        alarm_step(alarm("a1", "raised", "critical", START + timedelta(hours=1))),
        alarm_step(alarm("a2", "raised", "warning", START + timedelta(hours=2))),
        alarm_step(alarm("a2", "acknowledged", "warning", START + timedelta(hours=3))),
        alarm_step(alarm("a1", "resolved", "ok", START + timedelta(hours=5))),
        alarm_step(alarm("old", "resolved", "ok", START + timedelta(hours=2))),
        alarm_step(alarm("late", "resolved", "ok", START + timedelta(hours=4))),
    ]
    activity = weekly([], [], steps=steps).alarms
    assert (activity.raised, activity.acknowledged, activity.resolved) == (2, 1, 3)
    assert activity.raised_by_level == {"critical": 1, "warning": 1, "info": 0}
    assert activity.median_hours_to_resolve == 8.0  # of 4 h (a1) and 12 h (old); `late`'s raise is unknown
    assert [c.hours_to_resolve for c in activity.changes if c.transition == "resolved"] == [12.0, None, 4.0]


def test_no_resolve_means_no_median() -> None:
    """Without a resolve in the week the median time to resolve is unknown, not zero."""
    report = weekly([], [], steps=[alarm_step(alarm("a", "raised", "info", START))])
    assert report.alarms.median_hours_to_resolve is None


def test_counts_per_level_and_grade_at_the_start_and_the_end() -> None:
    """Both ends count targets per level and grade and distinct certificates."""
    report = weekly(
        [target("a.example", at=START, cert="a", level="critical", grade="F")],
        [
            target("a.example", at=END - timedelta(hours=1), cert="a", level="ok", grade="A"),
            target("b.example", at=END - timedelta(hours=1), cert="a", level="ok", grade="A"),
        ],
    )
    assert report.at_start.by_level == {"critical": 1, "warning": 0, "info": 0, "ok": 0}
    assert report.at_start.by_grade["F"] == 1
    assert (report.at_end.targets, report.at_end.certificates, report.at_end.by_level["ok"]) == (2, 1, 2)


def test_certificates_entering_each_renewal_window_next_week() -> None:
    """A certificate whose days left cross 90, 30, 7 or 0 during [end, end + 7 days) enters that window; the
    bounds are end in, end + 7 days out."""
    at = END - timedelta(hours=1)
    report = weekly(
        [],
        [
            target("ninety.example", at=at, cert="n", expires=END + timedelta(days=90)),
            target("thirty.example", at=at, cert="t", expires=END + timedelta(days=37) - timedelta(seconds=1)),
            target("outside.example", at=at, cert="o", expires=END + timedelta(days=37)),
            target("zero.example", at=at, cert="z", expires=END + timedelta(days=3)),
        ],
    )
    entering = {w.days: [c.target for c in w.certificates] for w in report.entering_windows}
    assert entering == {90: ["ninety.example:443"], 30: ["thirty.example:443"], 7: [], 0: ["zero.example:443"]}


def test_levels_by_day_cover_every_day_of_the_week_with_zeros_where_nothing_was_evaluated() -> None:
    """Seven days, each with every level; a day the history has no count for is all zeros."""
    report = weekly([], [], levels=[DayLevels(day=date(2026, 11, 17), counts={"critical": 2, "ok": 5})])
    assert [d.day for d in report.levels_by_day] == [date(2026, 11, 16 + i) for i in range(7)]
    assert report.levels_by_day[1].by_level == {"critical": 2, "warning": 0, "info": 0, "ok": 5}
    assert report.levels_by_day[0].by_level == {"critical": 0, "warning": 0, "info": 0, "ok": 0}


def test_expirations_by_week_count_certificates_per_week_ahead() -> None:
    """Each week from start on counts the moments inside it; past moments and ones beyond the last week don't."""
    weeks = expirations_by_week(
        [END - timedelta(seconds=1), END, END + timedelta(days=6), END + timedelta(days=7), END + timedelta(days=99)],
        END,
        weeks=3,
    )
    assert [w.count for w in weeks] == [2, 1, 0]
    assert [w.week_start for w in weeks] == [(END + timedelta(days=7 * i)).date() for i in range(3)]


def test_a_week_with_no_evaluation_and_no_alarm_is_empty() -> None:
    """An estate carried over from before the week, with nothing evaluated in it, makes an empty report."""
    stale = target("a.example", at=START - timedelta(days=1), cert="a")
    assert weekly([stale], []).empty is True
    assert weekly([stale], [target("a.example", at=START, cert="a")]).empty is False
    assert weekly([], [], steps=[alarm_step(alarm("a", "raised", "info", START))]).empty is False
