"""The history queries of the reports, in PostgreSQL (the `History` adapter's report methods).

They answer with the slim facts of `domain.facts` (weekly, monthly), and `domain.status` and the alarm lines of
`domain.report` (daily, custom), projected from the stored evaluation or alarm event in SQL (one `jsonb_to_record`
per row, so the jsonb is read once), streamed through a cursor, and with the strings that repeat over an estate
(issuers, owners, key kinds, finding codes) shared, so 100,000 targets stay small in memory. The latest evaluation
per target as of a moment is one index probe per target (`evaluations_target`); per-day level counts are added up
in the database. A row of `evaluations` is a run of unchanged sightings (`domain.sightings`):
`reporter.sighting_before` says which of them a moment or a day sees.
"""

from collections.abc import Hashable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from services.reporter.domain.facts import AlarmStep, DayLevels, LeafFacts, TargetFacts
from services.reporter.domain.report import ALARM_LINE_FIELDS, AlarmLine
from services.reporter.domain.status import TargetStatus, top_findings

_S = '"reporter"'
_PREFETCH = 2000
_H = TypeVar("_H", bound=Hashable)

#: The facts of evaluation `e` (with `j` its jsonb as a record), in the order `_facts` reads them.
_FACTS = """
    e.target_key, e.seen_at AS evaluated_at, j.reachable, e.level, e.grade, j.owner, j.target->>'server' AS server,
    e.fingerprint, j.certificate->>'subject' AS subject, j.certificate->>'issuer' AS issuer,
    (j.certificate->>'not_before')::timestamptz AS not_before, (j.certificate->>'not_after')::timestamptz AS not_after,
    j.certificate#>>'{key,type}' AS key_type, (j.certificate#>>'{key,bits}')::int AS key_bits,
    j.certificate#>>'{key,curve}' AS key_curve, j.certificate->>'signature_algorithm' AS signature_algorithm,
    j.certificate->>'spki_sha256' AS spki_sha256,
    ARRAY(SELECT v FROM jsonb_array_elements_text(j.tls->'versions') WITH ORDINALITY AS t(v, n) ORDER BY n)
        AS tls_versions,
    coalesce((j.chain->>'complete')::boolean, false) AS chain_complete,
    coalesce((j.chain->>'trusted')::boolean, false) AS chain_trusted,
    coalesce((j.chain->>'ordered')::boolean, true) AS chain_ordered,
    ARRAY(SELECT f->>'code' FROM jsonb_array_elements(j.findings) WITH ORDINALITY AS t(f, n) ORDER BY n)
        AS finding_codes,
    ARRAY(SELECT c->>'reason' FROM jsonb_array_elements(j.security->'caps') WITH ORDINALITY AS t(c, n) ORDER BY n)
        AS grade_reasons
"""
_AS_RECORD = (
    "CROSS JOIN LATERAL jsonb_to_record(e.evaluation) AS j(reachable boolean, owner text, target jsonb, "
    "certificate jsonb, tls jsonb, chain jsonb, findings jsonb, security jsonb)"
)

_ESTATE = f"""
SELECT {_FACTS}
FROM {_S}.latest l
CROSS JOIN LATERAL (
    SELECT x.*, {_S}.sighting_before(x.evaluated_at, x.last_seen_at, x.seen_count, $2) AS seen_at
    FROM {_S}.evaluations x
    WHERE x.target_key = l.target_key AND x.evaluated_at < $2
    ORDER BY x.evaluated_at DESC LIMIT 1
) e
{_AS_RECORD}
WHERE e.seen_at >= $1
ORDER BY l.target_key
"""

# A certificate's first evaluation is the first sighting of its first run; a run started in the period is its
# first when no run of the certificate started before.
_FIRST_SEEN = f"""
SELECT {_FACTS}
FROM (
    SELECT DISTINCT ON (x.fingerprint) x.*, x.evaluated_at AS seen_at
    FROM {_S}.evaluations x
    WHERE x.evaluated_at >= $1 AND x.evaluated_at < $2 AND x.fingerprint IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {_S}.evaluations y WHERE y.fingerprint = x.fingerprint AND y.evaluated_at < $1)
    ORDER BY x.fingerprint, x.evaluated_at
) e
{_AS_RECORD}
ORDER BY e.fingerprint
"""

_ALARM_STEPS = f"""
SELECT alarm_id, transition, level, at, event#>>'{{key,target_key}}' AS target_key,
       event#>>'{{key,trigger}}' AS trigger
FROM {_S}.alarm_events
WHERE transition IN ('raised', 'acknowledged', 'resolved')
  AND ((at >= $1 AND at < $2)
       OR (transition = 'raised' AND alarm_id IN (
           SELECT alarm_id FROM {_S}.alarm_events WHERE transition = 'resolved' AND at >= $1 AND at < $2)))
ORDER BY at, event_id
"""

# Each run is read on each UTC day it spans that one of its sightings falls on; a target's level that day is the
# one of its run seen last in the day.
_DAILY_LEVELS = f"""
SELECT day, level, count(*) AS n
FROM (
    SELECT DISTINCT ON (target_key, day) target_key, day, level
    FROM (
        SELECT r.target_key, r.level, d.day::date AS day,
               {_S}.sighting_before(r.evaluated_at, r.last_seen_at, r.seen_count,
                                    least((d.day + interval '1 day') AT TIME ZONE 'UTC', $2)) AS seen_at,
               greatest(d.day AT TIME ZONE 'UTC', $1) AS day_start
        FROM {_S}.evaluations r
        CROSS JOIN LATERAL generate_series(
            date_trunc('day', greatest(r.evaluated_at, $1) AT TIME ZONE 'UTC'),
            date_trunc('day', least(coalesce(r.last_seen_at, r.evaluated_at), $2) AT TIME ZONE 'UTC'),
            interval '1 day') AS d(day)
        WHERE coalesce(r.last_seen_at, r.evaluated_at) >= $1 AND r.evaluated_at < $2
    ) sighted
    WHERE seen_at >= day_start
    ORDER BY target_key, day, seen_at DESC
) last_of_day
GROUP BY day, level
ORDER BY day, level
"""


#: Each target's latest run at its last sighting (as `runs.as_last_seen` reads it), from the columns `latest` keeps
#: and, for the findings and the error, its jsonb (`benchmarks/reporter_plans.py` EXPLAINs it: a cursor's statement
#: escapes asyncpg's query log).
STATUSES = f"""
SELECT l.target_key, coalesce(e.last_seen_at, e.evaluated_at) AS evaluated_at, l.reachable, l.level, l.grade,
       l.owner, l.server, l.fingerprint, l.subject, l.issuer, l.not_after,
       CASE WHEN e.last_seen_at IS NULL OR e.days_remaining IS NULL THEN e.days_remaining
            ELSE e.last_days_remaining END AS days_remaining,
       ARRAY(SELECT f->>'code' FROM jsonb_array_elements(j.findings) WITH ORDINALITY AS t(f, n) ORDER BY n) AS codes,
       ARRAY(SELECT f->>'severity' FROM jsonb_array_elements(j.findings) WITH ORDINALITY AS t(f, n) ORDER BY n)
           AS severities,
       ARRAY(SELECT f->>'message' FROM jsonb_array_elements(j.findings) WITH ORDINALITY AS t(f, n) ORDER BY n)
           AS messages,
       j.error->>'kind' AS error_kind, j.error->>'message' AS error_message
FROM {_S}.latest l
JOIN {_S}.evaluations e ON e.event_id = l.event_id
CROSS JOIN LATERAL jsonb_to_record(e.evaluation) AS j(findings jsonb, error jsonb)
ORDER BY l.target_key
"""

# The transitions a status report lists: each unresolved alarm's latest (which `alarms` keeps: one probe each) and
# every one since $1, each once, as the fields of its line only (`domain.report.AlarmLine`), so the events' jsonb
# is never decoded whole. Events stored before `state` existed carry only their transition (as the `alarms`
# backfill of 002_dashboard.sql reads them).
_ALARM_TRANSITIONS = f"""
SELECT e.alarm_id, e.event#>>'{{key,target_key}}' AS target, e.event#>>'{{key,trigger}}' AS trigger, e.level,
       e.transition, e.at, s.state,
       CASE WHEN s.state = 'acknowledged' THEN e.event#>>'{{acknowledgement,by}}' END AS acknowledged_by,
       CASE WHEN s.state = 'acknowledged' THEN (e.event#>>'{{acknowledgement,at}}')::timestamptz END
           AS acknowledged_at
FROM (
    SELECT a.event_id FROM {_S}.alarms a WHERE a.state IN ('open', 'acknowledged')
    UNION
    SELECT x.event_id FROM {_S}.alarm_events x WHERE x.at >= $1
) chosen
JOIN {_S}.alarm_events e ON e.event_id = chosen.event_id
CROSS JOIN LATERAL (
    SELECT coalesce(e.event->>'state', CASE e.transition WHEN 'resolved' THEN 'resolved' ELSE 'open' END) AS state
) s
ORDER BY e.at, e.event_id
"""


class _Shared:
    """One object per distinct value: an estate repeats a few issuers, owners, key kinds and code lists."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: _H) -> _H:
        found: _H = self._seen.setdefault(value, value)
        return found


def _target(r: asyncpg.Record, one: _Shared) -> dict[str, Any]:
    """The fields a target's facts and its status both take from a row of `latest`."""
    return {
        "target_key": r["target_key"],
        "evaluated_at": r["evaluated_at"],
        "reachable": r["reachable"],
        "level": one(r["level"]),
        "grade": one(r["grade"]),
        "owner": one(r["owner"]),
        "server": one(r["server"]),
    }


def _facts(r: asyncpg.Record, one: _Shared) -> TargetFacts:
    leaf = None
    if r["fingerprint"] is not None:
        leaf = LeafFacts(
            fingerprint=r["fingerprint"],
            subject=r["subject"],
            issuer=one(r["issuer"]),
            not_before=r["not_before"],
            not_after=r["not_after"],
            key_type=one(r["key_type"]),
            key_bits=r["key_bits"],
            key_curve=one(r["key_curve"]),
            signature_algorithm=one(r["signature_algorithm"]),
            spki_sha256=r["spki_sha256"],
        )
    return TargetFacts(
        **_target(r, one),
        leaf=leaf,
        tls_versions=one(tuple(r["tls_versions"])),
        chain_complete=r["chain_complete"],
        chain_trusted=r["chain_trusted"],
        chain_ordered=r["chain_ordered"],
        finding_codes=one(tuple(r["finding_codes"])),
        grade_reasons=one(tuple(r["grade_reasons"])),
    )


async def _stream_facts(pool: asyncpg.Pool, query: str, *args: object) -> list[TargetFacts]:
    one = _Shared()
    async with pool.acquire() as conn, conn.transaction():
        return [_facts(r, one) async for r in conn.cursor(query, *args, prefetch=_PREFETCH)]


def _status(r: asyncpg.Record, one: _Shared) -> TargetStatus:
    return TargetStatus(
        **_target(r, one),
        fingerprint=r["fingerprint"],
        subject=r["subject"],
        issuer=one(r["issuer"]),
        not_after=r["not_after"],
        days_remaining=r["days_remaining"],
        findings=one(top_findings(zip(r["codes"], r["severities"], r["messages"], strict=True))),
        error_kind=one(r["error_kind"]),
        error_message=r["error_message"],
    )


async def statuses(pool: asyncpg.Pool) -> list[TargetStatus]:
    """The status of every target's latest evaluation, at its last sighting, by target key: streamed through a
    cursor, so only the slim statuses are ever held."""
    one = _Shared()
    async with pool.acquire() as conn, conn.transaction():
        return [_status(r, one) async for r in conn.cursor(STATUSES, prefetch=_PREFETCH)]


async def alarm_transitions(pool: asyncpg.Pool, since: datetime) -> list[AlarmLine]:
    """The latest transition of every alarm not resolved and every transition since `since`, each once, as the
    lines a report lists, in the order they happened (then by event id): built from the projected columns, not
    validated again."""
    one = _Shared()
    return [
        AlarmLine.model_construct(
            ALARM_LINE_FIELDS,
            alarm_id=r["alarm_id"],
            target=r["target"],
            trigger=one(r["trigger"]),
            level=one(r["level"]),
            transition=one(r["transition"]),
            at=r["at"],
            state=one(r["state"]),
            acknowledged_by=one(r["acknowledged_by"]),
            acknowledged_at=r["acknowledged_at"],
        )
        for r in await pool.fetch(_ALARM_TRANSITIONS, since)
    ]


async def estate(pool: asyncpg.Pool, as_of: datetime, *, since: datetime) -> list[TargetFacts]:
    """The facts of each target's latest evaluation in `[since, as_of)`, by target key."""
    return await _stream_facts(pool, _ESTATE, since, as_of)


async def first_seen(pool: asyncpg.Pool, start: datetime, end: datetime) -> list[TargetFacts]:
    """The facts of the first evaluation of each certificate first evaluated in `[start, end)`, by fingerprint."""
    return await _stream_facts(pool, _FIRST_SEEN, start, end)


async def alarm_steps(pool: asyncpg.Pool, start: datetime, end: datetime) -> list[AlarmStep]:
    """The raised, acknowledged and resolved transitions in `[start, end)` and the raise of each alarm resolved
    in it, in time order."""
    rows = await pool.fetch(_ALARM_STEPS, start, end)
    return [
        AlarmStep(
            alarm_id=r["alarm_id"],
            transition=r["transition"],
            level=r["level"],
            at=r["at"],
            target_key=r["target_key"],
            trigger=r["trigger"],
        )
        for r in rows
    ]


async def daily_levels(pool: asyncpg.Pool, start: datetime, end: datetime) -> list[DayLevels]:
    """Per UTC day of `[start, end)` with evaluations: targets per level, each by its last evaluation that day."""
    days: dict[Any, dict[str, int]] = {}
    for r in await pool.fetch(_DAILY_LEVELS, start, end):
        days.setdefault(r["day"], {})[r["level"]] = r["n"]
    return [DayLevels(day=day, counts=counts) for day, counts in days.items()]
