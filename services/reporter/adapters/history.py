"""The reporter's history in PostgreSQL (schema `reporter`): evaluations, alarms, deliveries, reports.

Every write records the consumed event id in the same transaction (`shared.db.claim_event`, `claim_events` for a
batch), so a redelivered event changes nothing. The pool must come from `shared.db.create_pool`, whose connections
map jsonb to Python.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from services.reporter.adapters import dashboard_sql, pruning, report_queries
from services.reporter.adapters.runs import (
    LAST_SEEN_COLUMNS,
    NEW_RUN,
    SEEN_AGAIN,
    as_last_seen,
    choose_runs,
    last_sighting,
    new_run_values,
    runs_in_force,
)
from services.reporter.domain.estate import (
    AlarmKey,
    AlarmRow,
    EstateCounts,
    ExpiryCount,
    Facets,
    ObservationRow,
    RowKey,
    TargetRow,
)
from services.reporter.domain.facts import AlarmStep, DayLevels, TargetFacts
from services.reporter.domain.report import AlarmLine
from services.reporter.domain.status import TargetStatus
from services.reporter.domain.views import NotificationRecord
from services.reporter.ports import (
    AlarmFilter,
    AlarmOrder,
    CertificateFilter,
    CertificateSort,
    ExpiryUnit,
)
from shared.db import claim_event, claim_events, load_migrations, migrate
from shared.events import AlarmEvent, CloudEvent, Evaluation, NotificationResult, ReportPublished
from shared.outbox import enqueue

SCHEMA = "reporter"
CONSUMER = "reporter"
_S = f'"{SCHEMA}"'


class History:
    """The `HistoryStore` in the reporter schema, through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def migrate(self) -> list[str]:
        """Apply the reporter's migrations; returns the names applied."""
        return await migrate(self._pool, SCHEMA, load_migrations("services.reporter.adapters.migrations"))

    async def prune(self, now: datetime, *, retention: timedelta) -> int:
        """Delete the history older than `retention` and the event ids older than the dedup window (see
        `adapters.pruning`); returns how many rows went."""
        return await pruning.prune(self._pool, history_before=now - retention, now=now)

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def record_evaluation(self, event_id: str, evaluation: Evaluation) -> bool:
        """Store an evaluation, the target's latest unless a newer one is there; False on redelivery. An evaluation
        that repeats the one in force at its time is a sighting of that run (`domain.sightings`), not a row."""
        [stored] = await self.record_evaluations([(event_id, evaluation)])
        return stored

    async def record_evaluations(self, items: Sequence[tuple[str, Evaluation]]) -> list[bool]:
        """`record_evaluation` on each `(event_id, evaluation)` in order, in one transaction of at most five round
        trips (and BEGIN and COMMIT) however many there are: claim the ids, read and lock the runs in force, start
        runs, count sightings, move the targets' latest."""
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await claim_events(conn, SCHEMA, [event_id for event_id, _ in items], CONSUMER)
            fresh = [item for item, new in zip(items, claimed, strict=True) if new]
            if fresh:
                await _store_evaluations(conn, fresh)
            return claimed

    async def record_alarm(self, event_id: str, alarm: AlarmEvent) -> bool:
        """Store one alarm transition; False on redelivery."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_event(conn, SCHEMA, event_id, CONSUMER):
                return False
            await conn.execute(
                f"INSERT INTO {_S}.alarm_events(event_id, alarm_id, transition, level, fingerprint, at, "
                "event) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
                event_id,
                alarm.alarm_id,
                alarm.transition,
                alarm.level,
                alarm.key.fingerprint_sha256,
                alarm.occurred_at,
                alarm.model_dump(mode="json"),
            )
            await dashboard_sql.upsert_alarm(conn, event_id, alarm)
            return True

    async def record_notification(self, event_id: str, result: NotificationResult, *, ok: bool) -> bool:
        """Store one delivery outcome; False on redelivery."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_event(conn, SCHEMA, event_id, CONSUMER):
                return False
            await conn.execute(
                f"INSERT INTO {_S}.notifications(event_id, alarm_id, channel, recipient, ok, at, event) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
                event_id,
                result.alarm_id,
                result.channel,
                result.recipient,
                ok,
                result.at,
                result.model_dump(mode="json"),
            )
            return True

    async def latest(
        self, where: CertificateFilter | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """The latest evaluation of every target matching `where`, by target key, after the key `after`."""
        p = dashboard_sql.Params()
        conditions = dashboard_sql.certificate_conditions(where or CertificateFilter(), p)
        if after is not None:
            conditions.append(f"l.target_key > {p(after)}")
        rows = await self._pool.fetch(
            f"SELECT {LAST_SEEN_COLUMNS} FROM {_S}.latest l JOIN {_S}.evaluations e ON e.event_id = l.event_id "
            f"{dashboard_sql.where_clause(conditions)} ORDER BY l.target_key LIMIT {p(limit)}",
            *p.values,
        )
        return [as_last_seen(r) for r in rows]

    async def evaluations_of(self, fingerprint: str, *, limit: int = 100) -> list[Evaluation]:
        """Evaluations of one certificate (canonical fingerprint), newest first: each run at its last sighting."""
        rows = await self._pool.fetch(
            f"SELECT {LAST_SEEN_COLUMNS} FROM {_S}.evaluations e WHERE e.fingerprint = $1 "
            "ORDER BY coalesce(e.last_seen_at, e.evaluated_at) DESC, e.target_key DESC LIMIT $2",
            fingerprint,
            limit,
        )
        return [as_last_seen(r) for r in rows]

    async def alarm_events(
        self,
        *,
        fingerprint: str | None = None,
        since: datetime | None = None,
        alarm_id: str | None = None,
        alarm_ids: list[str] | None = None,
    ) -> list[tuple[str, AlarmEvent]]:
        """`(event_id, alarm event)` pairs in the order they happened, maybe of one certificate, recent, of one
        alarm or of some alarms."""
        rows = await self._pool.fetch(
            f"SELECT event_id, event FROM {_S}.alarm_events "
            "WHERE ($1::text IS NULL OR fingerprint = $1) AND ($2::timestamptz IS NULL OR at >= $2) "
            "AND ($3::text IS NULL OR alarm_id = $3) AND ($4::text[] IS NULL OR alarm_id = ANY($4)) "
            "ORDER BY at, event_id",
            fingerprint,
            since,
            alarm_id,
            alarm_ids,
        )
        return [(r["event_id"], AlarmEvent.model_validate(r["event"])) for r in rows]

    async def notifications(self, alarm_ids: list[str] | None = None) -> list[NotificationRecord]:
        """Delivery outcomes, oldest first, optionally of some alarms only."""
        rows = await self._pool.fetch(
            f"SELECT ok, event FROM {_S}.notifications "
            "WHERE ($1::text[] IS NULL OR alarm_id = ANY($1)) ORDER BY at, event_id",
            alarm_ids,
        )
        return [NotificationRecord.of(NotificationResult.model_validate(r["event"]), ok=r["ok"]) for r in rows]

    async def reports(self, *, limit: int = 100) -> list[ReportPublished]:
        """Published reports, newest period first."""
        rows = await self._pool.fetch(f"SELECT event FROM {_S}.reports ORDER BY period_start DESC, key LIMIT $1", limit)
        return [ReportPublished.model_validate(r["event"]) for r in rows]

    async def report_for(
        self, kind: str, start: datetime, end: datetime, *, name: str | None = None
    ) -> ReportPublished | None:
        """The report of one kind and period (a custom one: of that name), if it was published."""
        row = await self._pool.fetchrow(
            f"SELECT event FROM {_S}.reports WHERE kind = $1 AND name = $2 AND period_start = $3 AND period_end = $4",
            kind,
            name or "",
            start,
            end,
        )
        return ReportPublished.model_validate(row["event"]) if row else None

    async def record_report(self, key: str, report: ReportPublished, announcement: CloudEvent) -> bool:
        """Claim the report's (kind, name, period) and enqueue its announcement atomically; False if taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO {_S}.reports(key, kind, name, period_start, period_end, location, event) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1",
                key,
                report.kind,
                report.name or "",
                report.period_start,
                report.period_end,
                report.location,
                report.model_dump(mode="json"),
            )
            if inserted is None:
                return False
            await enqueue(conn, SCHEMA, announcement)
            return True

    async def request_acknowledgement(self, request: CloudEvent) -> bool:
        """Enqueue an `acknowledgement.requested.v1` command for the outbox relay; False if its id was enqueued
        before."""
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(f"SELECT 1 FROM {_S}.outbox WHERE event_id = $1", request.id):
                return False
            await enqueue(conn, SCHEMA, request)
            return True

    async def statuses(self) -> list[TargetStatus]:
        """The status of every target's latest evaluation, at its last sighting, by target key."""
        return await report_queries.statuses(self._pool)

    async def alarm_transitions(self, since: datetime) -> list[AlarmLine]:
        """The latest transition of every alarm not resolved and every transition since `since`, each once, as
        report lines, in the order they happened (then by event id)."""
        return await report_queries.alarm_transitions(self._pool, since)

    async def estate(self, as_of: datetime, *, since: datetime) -> list[TargetFacts]:
        """The facts of each target's latest evaluation in `[since, as_of)`, by target key (a tie: either)."""
        return await report_queries.estate(self._pool, as_of, since=since)

    async def first_seen(self, start: datetime, end: datetime) -> list[TargetFacts]:
        """The facts of the first evaluation of each certificate whose first evaluation ever is in `[start, end)`,
        by fingerprint (a tie: either)."""
        return await report_queries.first_seen(self._pool, start, end)

    async def alarm_steps(self, start: datetime, end: datetime) -> list[AlarmStep]:
        """The raised, acknowledged and resolved transitions in `[start, end)`, and the raise (whenever it was) of
        each alarm resolved in it, in time order (then by event id)."""
        return await report_queries.alarm_steps(self._pool, start, end)

    async def daily_levels(self, start: datetime, end: datetime) -> list[DayLevels]:
        """For each UTC day of `[start, end)` with evaluations, by day: the targets at each level (only levels
        with any), each target by its last evaluation of the day."""
        return await report_queries.daily_levels(self._pool, start, end)

    async def certificate_rows(
        self,
        where: CertificateFilter | None = None,
        *,
        sort: CertificateSort = "urgency",
        after: RowKey | None = None,
        limit: int,
    ) -> list[TargetRow]:
        """The rows of the targets matching `where`, in the order `sort`, after the row at `after`."""
        return await dashboard_sql.certificate_rows(
            self._pool, where or CertificateFilter(), sort=sort, after=after, limit=limit
        )

    async def count_certificates(self, where: CertificateFilter | None = None) -> int:
        """How many targets match `where`."""
        return await dashboard_sql.count_certificates(self._pool, where or CertificateFilter())

    async def estate_counts(self, now: datetime) -> EstateCounts:
        """Targets per level and grade, distinct certificates, expired before `now`, alarms not resolved."""
        return await dashboard_sql.estate_counts(self._pool, now)

    async def facets(self, *, limit: int = 1000) -> Facets:
        """The distinct owners, servers and issuers of the targets, sorted, at most `limit` of each."""
        return await dashboard_sql.facets(self._pool, limit=limit)

    async def expiry_counts(self, start: datetime, end: datetime, *, unit: ExpiryUnit) -> list[ExpiryCount]:
        """Targets whose certificate expires in `[start, end)`, counted per UTC day or month and level."""
        return await dashboard_sql.expiry_counts(self._pool, start, end, unit=unit)

    async def expiring(self, start: datetime, end: datetime, *, per_day: int) -> list[TargetRow]:
        """Targets whose certificate expires in `[start, end)`, at most `per_day` of each UTC day."""
        return await dashboard_sql.expiring(self._pool, start, end, per_day=per_day)

    async def alarm_rows(
        self,
        where: AlarmFilter | None = None,
        *,
        order: AlarmOrder = "recent",
        after: AlarmKey | None = None,
        limit: int,
    ) -> list[AlarmRow]:
        """The alarms matching `where`, in the order `order`, after the alarm at `after`."""
        return await dashboard_sql.alarm_rows(self._pool, where or AlarmFilter(), order=order, after=after, limit=limit)

    async def count_alarms(self, where: AlarmFilter | None = None) -> int:
        """How many alarms match `where`."""
        return await dashboard_sql.count_alarms(self._pool, where or AlarmFilter())

    async def observations_of(
        self, fingerprint: str, *, limit: int, changes_only: bool = False
    ) -> list[ObservationRow]:
        """Evaluations of one certificate, newest first; `changes_only`: each target's first and level changes."""
        return await dashboard_sql.observations_of(self._pool, fingerprint, limit=limit, changes_only=changes_only)


async def _store_evaluations(conn: asyncpg.Connection, items: Sequence[tuple[str, Evaluation]]) -> None:
    """Store evaluations whose ids were just claimed, inside the caller's transaction. Rows are written in target
    key order (the runs were locked in it), and each target's latest once: the newest of the batch (a tie: the
    last), which the upsert's own condition then weighs against the stored one, as one upsert each would."""
    choices = choose_runs(items, await runs_in_force(conn, [evaluation for _, evaluation in items]))
    chosen = sorted(zip(items, choices, strict=True), key=lambda pair: pair[0][1].target_key)
    new_runs = [new_run_values(c.run, e) for (_, e), c in chosen if c.starts]
    sightings = [(c.run.event_id, *last_sighting(e)) for (_, e), c in chosen if not c.starts]
    latest: dict[str, tuple[str, Evaluation]] = {}
    for (_, e), c in chosen:
        newest = latest.get(e.target_key)
        if newest is None or newest[1].evaluated_at <= e.evaluated_at:
            latest[e.target_key] = (c.run.event_id, e)
    if new_runs:
        await conn.executemany(NEW_RUN, new_runs)
    if sightings:
        await conn.executemany(SEEN_AGAIN, sightings)
    await conn.executemany(dashboard_sql.UPSERT_LATEST, [dashboard_sql.latest_values(*p) for p in latest.values()])
