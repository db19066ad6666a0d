"""The dashboard's reads over the in-memory twin's data (the `InMemoryHistory` page methods), deciding what the
PostgreSQL queries of `dashboard_sql` decide, by scanning lists instead of indexes."""

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from services.reporter.domain.estate import (
    NEVER,
    AlarmKey,
    AlarmRow,
    EstateCounts,
    ExpiryCount,
    Facets,
    RowKey,
    TargetRow,
    alarm_rows,
    searchable_text,
    target_row,
    urgency,
)
from services.reporter.domain.report import GRADES, LEVELS
from services.reporter.ports import AlarmFilter, AlarmOrder, CertificateFilter, CertificateSort, ExpiryUnit
from shared.events import AlarmEvent, Evaluation


def matches(where: CertificateFilter, evaluation: Evaluation) -> bool:
    """Whether a target's latest `evaluation` passes every filter set in `where`."""
    row = target_row(evaluation)
    equal = (
        (where.level, row.level),
        (where.grade, row.grade),
        (where.owner, row.owner),
        (where.server, row.server),
        (where.issuer, row.issuer),
        (where.fingerprint, row.fingerprint),
    )
    return (
        all(wanted is None or wanted == value for wanted, value in equal)
        and (not where.q or where.q.lower() in searchable_text(evaluation).lower())
        and (where.expires_from is None or (row.not_after is not None and row.not_after >= where.expires_from))
        and (where.expires_before is None or (row.not_after is not None and row.not_after < where.expires_before))
    )


def _sort_key(sort: CertificateSort) -> Callable[[RowKey], tuple[Any, ...]]:
    def key(k: RowKey) -> tuple[Any, ...]:
        expiry = k.not_after or NEVER
        if sort == "urgency":
            return (urgency(k.level), expiry, k.target_key)
        return (expiry, k.target_key) if sort == "expiry" else (k.target_key,)

    return key


def certificate_rows(
    latest: Iterable[Evaluation],
    where: CertificateFilter,
    *,
    sort: CertificateSort,
    after: RowKey | None,
    limit: int,
) -> list[TargetRow]:
    """See `HistoryStore.certificate_rows`."""
    key = _sort_key(sort)
    rows = sorted((target_row(e) for e in latest if matches(where, e)), key=lambda r: key(r.key))
    return [r for r in rows if after is None or key(r.key) > key(after)][:limit]


def estate_counts(
    latest: Sequence[Evaluation], alarms: Iterable[tuple[str, AlarmEvent]], now: datetime
) -> EstateCounts:
    """See `HistoryStore.estate_counts`."""
    rows = [target_row(e) for e in latest]
    levels = Counter(r.level for r in rows)
    grades = Counter(r.grade for r in rows)
    states = Counter(r.state for r in alarm_rows(alarms))
    return EstateCounts(
        targets=len(rows),
        certificates=len({r.fingerprint for r in rows if r.fingerprint is not None}),
        expired=sum(1 for r in rows if r.not_after is not None and r.not_after < now),
        by_level={level: levels[level] for level in LEVELS},
        by_grade={grade: grades[grade] for grade in GRADES},
        open_alarms=states["open"],
        acknowledged_alarms=states["acknowledged"],
    )


def facets(latest: Iterable[Evaluation], *, limit: int) -> Facets:
    """See `HistoryStore.facets`."""
    rows = [target_row(e) for e in latest]

    def distinct(values: Iterable[str | None]) -> tuple[str, ...]:
        return tuple(sorted({v for v in values if v is not None}))[:limit]

    return Facets(
        owners=distinct(r.owner for r in rows),
        servers=distinct(r.server for r in rows),
        issuers=distinct(r.issuer for r in rows),
    )


def _expiring_rows(latest: Iterable[Evaluation], start: datetime, end: datetime) -> list[TargetRow]:
    rows = (target_row(e) for e in latest)
    return [r for r in rows if r.not_after is not None and start <= r.not_after < end]


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def expiry_counts(
    latest: Iterable[Evaluation], start: datetime, end: datetime, *, unit: ExpiryUnit
) -> list[ExpiryCount]:
    """See `HistoryStore.expiry_counts`."""
    counts: Counter[tuple[date, str]] = Counter()
    for row in _expiring_rows(latest, start, end):
        assert row.not_after is not None
        day = _utc_day(row.not_after)
        counts[(day if unit == "day" else day.replace(day=1), row.level)] += 1
    ordered = sorted(counts.items(), key=lambda item: (item[0][0], urgency(item[0][1])))
    return [ExpiryCount(start=period, level=level, count=n) for (period, level), n in ordered]


def expiring(latest: Iterable[Evaluation], start: datetime, end: datetime, *, per_day: int) -> list[TargetRow]:
    """See `HistoryStore.expiring`."""
    placed: Counter[date] = Counter()
    chosen: list[TargetRow] = []
    by_urgency = _sort_key("urgency")
    for row in sorted(_expiring_rows(latest, start, end), key=lambda r: by_urgency(r.key)):
        assert row.not_after is not None
        day = _utc_day(row.not_after)
        if placed[day] < per_day:
            placed[day] += 1
            chosen.append(row)
    return sorted(chosen, key=lambda r: (r.not_after, r.target_key))


def alarm_matches(where: AlarmFilter, row: AlarmRow) -> bool:
    """Whether an alarm passes every filter set in `where`."""
    return (
        (not where.states or row.state in where.states)
        and (where.level is None or row.level == where.level)
        and (where.owner is None or where.owner in row.owners)
        and (where.active_from is None or row.state != "resolved" or row.updated_at >= where.active_from)
        and (where.active_until is None or row.raised_at < where.active_until)
    )


def _comes_after(order: AlarmOrder, row: AlarmKey, key: AlarmKey) -> bool:
    """Whether `row` comes after `key` in the order `order` (latest change first: the larger time, then id)."""
    recent = (row.updated_at, row.alarm_id) < (key.updated_at, key.alarm_id)
    if order == "recent":
        return recent
    return urgency(row.level) > urgency(key.level) or (urgency(row.level) == urgency(key.level) and recent)


def select_alarms(
    events: Iterable[tuple[str, AlarmEvent]],
    where: AlarmFilter,
    *,
    order: AlarmOrder,
    after: AlarmKey | None,
    limit: int,
) -> list[AlarmRow]:
    """See `HistoryStore.alarm_rows`."""
    rows = sorted(
        (r for r in alarm_rows(events) if alarm_matches(where, r)),
        key=lambda r: (r.updated_at, r.alarm_id),
        reverse=True,
    )
    if order == "severity":
        rows.sort(key=lambda r: urgency(r.level))  # stable: the latest change first within a level
    return [r for r in rows if after is None or _comes_after(order, r.key, after)][:limit]
