"""The dashboard's rows in PostgreSQL (the `History` adapter's page methods): the columns kept on `latest` and
`alarms` as evaluations and alarm events arrive, and the filtered, ordered, keyset-paged reads of them.

Each read builds its WHERE clause from the filters that are set only, so the planner sees plain conditions and
picks an index for each (`002_dashboard.sql`); a page continues after the sort key of the previous page's last row,
so page 1,000 costs what page 1 does.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.reporter.domain.estate import (
    AlarmKey,
    AlarmRow,
    EstateCounts,
    ExpiryCount,
    Facets,
    ObservationRow,
    RowKey,
    TargetRow,
    searchable_text,
    urgency,
)
from services.reporter.domain.report import GRADES, LEVELS
from services.reporter.ports import AlarmFilter, AlarmOrder, CertificateFilter, CertificateSort, ExpiryUnit
from shared.events import AlarmEvent, Evaluation

_S = '"reporter"'
_ROW = (
    "l.target_key, l.level, l.grade, l.owner, l.server, l.fingerprint, l.subject, l.issuer, l.not_after, "
    "l.reachable, l.evaluated_at"
)
_ALARM = (
    "a.alarm_id, a.event_id, a.state, a.level, a.trigger, a.target_key, a.fingerprint, a.owners, "
    "a.acknowledged_by, a.acknowledged_at, a.raised_at, a.updated_at"
)
_FACETS = ("owner", "server", "issuer")

UPSERT_LATEST = f"""
INSERT INTO {_S}.latest (target_key, event_id, evaluated_at, level, grade, owner, server, fingerprint, subject,
                         issuer, not_after, reachable, search)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (target_key) DO UPDATE SET
    event_id = excluded.event_id, evaluated_at = excluded.evaluated_at, level = excluded.level,
    grade = excluded.grade, owner = excluded.owner, server = excluded.server, fingerprint = excluded.fingerprint,
    subject = excluded.subject, issuer = excluded.issuer, not_after = excluded.not_after,
    reachable = excluded.reachable, search = excluded.search
WHERE latest.evaluated_at <= excluded.evaluated_at
"""

_UPSERT_ALARM = f"""
INSERT INTO {_S}.alarms (alarm_id, event_id, state, level, trigger, target_key, fingerprint, owners,
                         acknowledged_by, acknowledged_at, raised_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
ON CONFLICT (alarm_id) DO UPDATE SET
    event_id = excluded.event_id, state = excluded.state, level = excluded.level, trigger = excluded.trigger,
    target_key = excluded.target_key, fingerprint = excluded.fingerprint, owners = excluded.owners,
    acknowledged_by = excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at,
    raised_at = least(alarms.raised_at, excluded.raised_at), updated_at = excluded.updated_at
WHERE (alarms.updated_at, alarms.event_id COLLATE "C") <= (excluded.updated_at, excluded.event_id COLLATE "C")
"""
# An event older than the alarm's latest changes only when it was first raised.
_EARLIER_RAISE = f"UPDATE {_S}.alarms SET raised_at = $2 WHERE alarm_id = $1 AND raised_at > $2"


def latest_values(event_id: str, evaluation: Evaluation) -> tuple[Any, ...]:
    """The parameters of `UPSERT_LATEST` for a target's evaluation."""
    cert = evaluation.certificate
    return (
        evaluation.target_key,
        event_id,
        evaluation.evaluated_at,
        evaluation.alarm.level,
        evaluation.security.grade if evaluation.security else None,
        evaluation.owner,
        evaluation.target.server,
        cert.fingerprint_sha256 if cert else None,
        cert.subject if cert else None,
        cert.issuer if cert else None,
        cert.not_after if cert else None,
        evaluation.reachable,
        searchable_text(evaluation),
    )


async def upsert_alarm(conn: asyncpg.Connection, event_id: str, alarm: AlarmEvent) -> None:
    """Keep the alarm's row as of its latest transition, and its first raise, inside the caller's transaction."""
    ack = alarm.acknowledgement
    await conn.execute(
        _UPSERT_ALARM,
        alarm.alarm_id,
        event_id,
        alarm.state,
        alarm.level,
        alarm.key.trigger,
        alarm.key.target_key,
        alarm.key.fingerprint_sha256,
        [owner.name for owner in alarm.owners],
        ack.by if ack else None,
        ack.at if ack else None,
        alarm.occurred_at,
    )
    await conn.execute(_EARLIER_RAISE, alarm.alarm_id, alarm.occurred_at)


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, with `%`, `_` and `\\` in it taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Params:
    """The values of a statement being built; calling it with a value adds it and answers its placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def certificate_conditions(where: CertificateFilter, p: Params) -> list[str]:
    """The conditions on `latest l` of the filters set in `where`."""
    equal = {
        "level": where.level,
        "grade": where.grade,
        "owner": where.owner,
        "server": where.server,
        "issuer": where.issuer,
        "fingerprint": where.fingerprint,
    }
    conditions = [f"l.{column} = {p(value)}" for column, value in equal.items() if value is not None]
    if where.q:
        conditions.append(f"l.search ILIKE {p(like_pattern(where.q))}")
    if where.expires_from is not None:
        conditions.append(f"l.not_after >= {p(where.expires_from)}")
    if where.expires_before is not None:
        conditions.append(f"l.not_after < {p(where.expires_before)}")
    return conditions


def where_clause(conditions: Sequence[str]) -> str:
    """`WHERE` and the conditions joined with AND, or nothing without any."""
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def _after(sort: CertificateSort, key: RowKey, p: Params) -> str:
    if sort == "target":
        return f"l.target_key > {p(key.target_key)}"
    expiry = f"coalesce({p(key.not_after)}::timestamptz, 'infinity')"
    if sort == "urgency":
        return f"(l.urgency, l.expiry, l.target_key) > ({p(urgency(key.level))}, {expiry}, {p(key.target_key)})"
    return f"(l.expiry, l.target_key) > ({expiry}, {p(key.target_key)})"


_ORDER = {
    "urgency": "l.urgency, l.expiry, l.target_key",
    "expiry": "l.expiry, l.target_key",
    "target": "l.target_key",
}


def _target_row(r: asyncpg.Record) -> TargetRow:
    return TargetRow(*r.values())


def certificate_rows_query(
    where: CertificateFilter, *, sort: CertificateSort, after: RowKey | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement and parameters of a page of target rows (the benchmarks and plan tests EXPLAIN it)."""
    p = Params()
    conditions = certificate_conditions(where, p)
    if after is not None:
        conditions.append(_after(sort, after, p))
    sql = f"SELECT {_ROW} FROM {_S}.latest l {where_clause(conditions)} ORDER BY {_ORDER[sort]} LIMIT {p(limit)}"
    return sql, p.values


async def certificate_rows(
    pool: asyncpg.Pool, where: CertificateFilter, *, sort: CertificateSort, after: RowKey | None, limit: int
) -> list[TargetRow]:
    """A page of target rows: see `HistoryStore.certificate_rows`."""
    sql, values = certificate_rows_query(where, sort=sort, after=after, limit=limit)
    return [_target_row(r) for r in await pool.fetch(sql, *values)]


async def count_certificates(pool: asyncpg.Pool, where: CertificateFilter) -> int:
    """How many targets match `where`."""
    p = Params()
    sql = f"SELECT count(*) FROM {_S}.latest l {where_clause(certificate_conditions(where, p))}"
    count: int = await pool.fetchval(sql, *p.values)
    return count


async def estate_counts(pool: asyncpg.Pool, now: datetime) -> EstateCounts:
    """See `HistoryStore.estate_counts`."""
    async with pool.acquire() as conn:
        groups = await conn.fetch(f"SELECT level, grade, count(*) AS n FROM {_S}.latest GROUP BY level, grade")
        totals = await conn.fetchrow(
            f"SELECT (SELECT count(DISTINCT fingerprint) FROM {_S}.latest) AS certificates, "
            # `expiry` is notAfter or infinity: the condition `latest_by_expiry` serves.
            f"(SELECT count(*) FROM {_S}.latest WHERE expiry < $1) AS expired, "
            f"(SELECT count(*) FROM {_S}.alarms WHERE state = 'open') AS open, "
            f"(SELECT count(*) FROM {_S}.alarms WHERE state = 'acknowledged') AS acknowledged",
            now,
        )
    by_level = dict.fromkeys(LEVELS, 0)
    by_grade = dict.fromkeys(GRADES, 0)
    for r in groups:
        by_level[r["level"]] = by_level.get(r["level"], 0) + r["n"]
        if r["grade"] in by_grade:
            by_grade[r["grade"]] += r["n"]
    return EstateCounts(
        targets=sum(r["n"] for r in groups),
        certificates=totals["certificates"],
        expired=totals["expired"],
        by_level=by_level,
        by_grade=by_grade,
        open_alarms=totals["open"],
        acknowledged_alarms=totals["acknowledged"],
    )


async def facets(pool: asyncpg.Pool, *, limit: int) -> Facets:
    """See `HistoryStore.facets`."""
    found: list[tuple[str, ...]] = []
    async with pool.acquire() as conn:
        for column in _FACETS:
            # A loose index scan: one index probe per distinct value, however many targets share each.
            rows = await conn.fetch(
                f"WITH RECURSIVE v(value) AS ("
                f"(SELECT {column} FROM {_S}.latest WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1) "
                f"UNION ALL SELECT (SELECT {column} FROM {_S}.latest WHERE {column} > v.value "
                f"ORDER BY {column} LIMIT 1) FROM v WHERE v.value IS NOT NULL) "
                "SELECT value FROM v WHERE value IS NOT NULL LIMIT $1",
                limit,
            )
            found.append(tuple(r["value"] for r in rows))
    return Facets(*found)


async def expiry_counts(pool: asyncpg.Pool, start: datetime, end: datetime, *, unit: ExpiryUnit) -> list[ExpiryCount]:
    """See `HistoryStore.expiry_counts`."""
    rows = await pool.fetch(
        "SELECT date_trunc($3::text, l.not_after AT TIME ZONE 'UTC')::date AS start, l.level, count(*) AS n "
        f"FROM {_S}.latest l WHERE l.not_after >= $1 AND l.not_after < $2 "
        "GROUP BY 1, l.level, l.urgency ORDER BY 1, l.urgency",
        start,
        end,
        unit,
    )
    return [ExpiryCount(r["start"], r["level"], r["n"]) for r in rows]


async def expiring(pool: asyncpg.Pool, start: datetime, end: datetime, *, per_day: int) -> list[TargetRow]:
    """See `HistoryStore.expiring`."""
    rows = await pool.fetch(
        f"SELECT {_ROW} FROM (SELECT *, row_number() OVER (PARTITION BY (not_after AT TIME ZONE 'UTC')::date "
        f"ORDER BY urgency, not_after, target_key) AS place FROM {_S}.latest "
        "WHERE not_after >= $1 AND not_after < $2) l "
        "WHERE l.place <= $3 ORDER BY l.not_after, l.target_key",
        start,
        end,
        per_day,
    )
    return [_target_row(r) for r in rows]


def alarm_conditions(where: AlarmFilter, p: Params) -> list[str]:
    """The conditions on `alarms a` of the filters set in `where`."""
    conditions = []
    if len(where.states) == 1:
        # An equality: `alarms_state` then serves the page in order, where ANY walks `alarms_recent` and filters.
        conditions.append(f"a.state = {p(where.states[0])}")
    elif where.states:
        conditions.append(f"a.state = ANY({p(list(where.states))}::text[])")
    if where.level is not None:
        conditions.append(f"a.level = {p(where.level)}")
    if where.owner is not None:
        conditions.append(f"a.owners @> ARRAY[{p(where.owner)}::text]")
    if where.active_from is not None:
        conditions.append(f"(a.state <> 'resolved' OR a.updated_at >= {p(where.active_from)})")
    if where.active_until is not None:
        conditions.append(f"a.raised_at < {p(where.active_until)}")
    return conditions


def _alarm_after(order: AlarmOrder, key: AlarmKey, p: Params) -> str:
    recent = f"(a.updated_at, a.alarm_id) < ({p(key.updated_at)}, {p(key.alarm_id)})"
    if order == "recent":
        return recent
    rank = p(urgency(key.level))
    return f"(a.urgency > {rank} OR (a.urgency = {rank} AND {recent}))"


_ALARM_ORDER = {
    "recent": "a.updated_at DESC, a.alarm_id DESC",
    "severity": "a.urgency, a.updated_at DESC, a.alarm_id DESC",
}


def alarm_rows_query(
    where: AlarmFilter, *, order: AlarmOrder, after: AlarmKey | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement and parameters of a page of alarm rows (the plan tests EXPLAIN it)."""
    p = Params()
    conditions = alarm_conditions(where, p)
    if after is not None:
        conditions.append(_alarm_after(order, after, p))
    order_by = _ALARM_ORDER[order]
    return (
        f"SELECT {_ALARM} FROM {_S}.alarms a {where_clause(conditions)} ORDER BY {order_by} LIMIT {p(limit)}",
        p.values,
    )


async def alarm_rows(
    pool: asyncpg.Pool, where: AlarmFilter, *, order: AlarmOrder, after: AlarmKey | None, limit: int
) -> list[AlarmRow]:
    """See `HistoryStore.alarm_rows`."""
    sql, values = alarm_rows_query(where, order=order, after=after, limit=limit)
    return [_alarm_row(r) for r in await pool.fetch(sql, *values)]


def _alarm_row(r: asyncpg.Record) -> AlarmRow:
    return AlarmRow(
        alarm_id=r["alarm_id"],
        event_id=r["event_id"],
        state=r["state"],
        level=r["level"],
        trigger=r["trigger"],
        target_key=r["target_key"],
        fingerprint=r["fingerprint"],
        owners=tuple(r["owners"]),
        acknowledged_by=r["acknowledged_by"],
        acknowledged_at=r["acknowledged_at"],
        raised_at=r["raised_at"],
        updated_at=r["updated_at"],
    )


async def count_alarms(pool: asyncpg.Pool, where: AlarmFilter) -> int:
    """How many alarms match `where`."""
    p = Params()
    count: int = await pool.fetchval(
        f"SELECT count(*) FROM {_S}.alarms a {where_clause(alarm_conditions(where, p))}", *p.values
    )
    return count


#: A run of `evaluations` as an observation row: at its last sighting, or at its first (`changes_only`: the change).
_AT_LAST = (
    "coalesce(last_seen_at, evaluated_at) AS seen_at, "
    "CASE WHEN last_seen_at IS NULL THEN days_remaining ELSE last_days_remaining END AS days_left"
)
_AT_FIRST = "evaluated_at AS seen_at, days_remaining AS days_left"
_OBSERVATION = "event_id, target_key, level, grade, evaluated_at, seen_count"


async def observations_of(
    pool: asyncpg.Pool, fingerprint: str, *, limit: int, changes_only: bool
) -> list[ObservationRow]:
    """See `HistoryStore.observations_of`."""
    chosen = (
        f"SELECT {_OBSERVATION}, {_AT_FIRST} FROM (SELECT *, "
        "lag(level) OVER (PARTITION BY target_key ORDER BY evaluated_at) AS before "
        f"FROM {_S}.evaluations WHERE fingerprint = $1) x WHERE before IS DISTINCT FROM level"
        if changes_only
        else f"SELECT {_OBSERVATION}, {_AT_LAST} FROM {_S}.evaluations WHERE fingerprint = $1"
    )
    # `reachable` lives in the jsonb: read it for the rows of the page only.
    rows = await pool.fetch(
        "SELECT o.seen_at, o.target_key, o.level, o.grade, o.days_left, "
        "(e.evaluation->>'reachable')::boolean AS reachable, o.evaluated_at, o.seen_count "
        f"FROM ({chosen} ORDER BY seen_at DESC, target_key DESC LIMIT $2) o "
        f"JOIN {_S}.evaluations e ON e.event_id = o.event_id ORDER BY o.seen_at DESC, o.target_key DESC",
        fingerprint,
        limit,
    )
    return [ObservationRow(*r.values()) for r in rows]
