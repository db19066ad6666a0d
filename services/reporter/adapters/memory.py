"""The in-memory twin of the PostgreSQL history: the same `HistoryStore` semantics (claims, newest evaluation per
target, the API's filters and paging, a report once per period), no database.

Each method runs without awaiting in between, so on one event loop it is as atomic as the PostgreSQL
transaction it stands for. `outbox` holds the announcements `record_report` and the commands
`request_acknowledgement` enqueued, in order, for a test to read. Ties are ordered as they were inserted, where
PostgreSQL leaves them unordered.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from services.reporter.adapters import memory_dashboard
from services.reporter.adapters.memory_runs import EvaluationRuns
from services.reporter.domain.estate import (
    AlarmKey,
    AlarmRow,
    EstateCounts,
    ExpiryCount,
    Facets,
    ObservationRow,
    RowKey,
    TargetRow,
    alarm_rows,
)
from services.reporter.domain.facts import AlarmStep, DayLevels, TargetFacts, alarm_step
from services.reporter.domain.report import AlarmLine, alarm_line
from services.reporter.domain.status import TargetStatus, status_of
from services.reporter.domain.views import NotificationRecord
from services.reporter.ports import (
    AlarmFilter,
    AlarmOrder,
    CertificateFilter,
    CertificateSort,
    ExpiryUnit,
)
from shared.events import AlarmEvent, CloudEvent, Evaluation, NotificationResult, ReportPublished


class InMemoryHistory:
    """A history in one process."""

    def __init__(self) -> None:
        self.outbox: list[CloudEvent] = []
        self._claimed: set[str] = set()
        self._evaluations = EvaluationRuns()
        self._latest: dict[str, Evaluation] = {}
        self._alarms: list[tuple[str, AlarmEvent]] = []
        self._notifications: list[tuple[str, NotificationRecord]] = []
        self._reports: dict[str, ReportPublished] = {}

    async def prune(self, now: datetime, *, retention: timedelta) -> int:
        """Forget the history older than `retention` as the PostgreSQL history does (`adapters.pruning`); claimed
        event ids stay (a process's memory lives shorter than the dedup window)."""
        before = now - retention
        stale = [key for key, evaluation in self._latest.items() if evaluation.evaluated_at < before]
        for key in stale:
            del self._latest[key]
        runs = self._evaluations.prune(before, keep=set(self._latest))
        gone = {r.alarm_id for r in alarm_rows(self._alarms) if r.state == "resolved" and r.updated_at < before}
        alarms, notifications = len(self._alarms), len(self._notifications)
        self._alarms = [(i, a) for i, a in self._alarms if a.alarm_id not in gone]
        self._notifications = [(i, n) for i, n in self._notifications if n.alarm_id not in gone]
        return len(stale) + runs + len(gone) + alarms - len(self._alarms) + notifications - len(self._notifications)

    async def ping(self) -> None:
        """Always answers: there is nothing to reach."""

    def _claim(self, event_id: str) -> bool:
        if event_id in self._claimed:
            return False
        self._claimed.add(event_id)
        return True

    async def record_evaluation(self, event_id: str, evaluation: Evaluation) -> bool:
        """Store an evaluation, the target's latest unless a newer one is there; False on redelivery."""
        return self._record_evaluation(event_id, evaluation)

    async def record_evaluations(self, items: Sequence[tuple[str, Evaluation]]) -> list[bool]:
        """`record_evaluation` on each `(event_id, evaluation)` in order, at once."""
        return [self._record_evaluation(event_id, evaluation) for event_id, evaluation in items]

    def _record_evaluation(self, event_id: str, evaluation: Evaluation) -> bool:
        if not self._claim(event_id):
            return False
        self._evaluations.record(evaluation)
        current = self._latest.get(evaluation.target_key)
        if current is None or current.evaluated_at <= evaluation.evaluated_at:
            self._latest[evaluation.target_key] = evaluation
        return True

    async def record_alarm(self, event_id: str, alarm: AlarmEvent) -> bool:
        """Store one alarm transition; False on redelivery."""
        if not self._claim(event_id):
            return False
        self._alarms.append((event_id, alarm))
        return True

    async def record_notification(self, event_id: str, result: NotificationResult, *, ok: bool) -> bool:
        """Store one delivery outcome; False on redelivery."""
        if not self._claim(event_id):
            return False
        self._notifications.append((event_id, NotificationRecord.of(result, ok=ok)))
        return True

    async def latest(
        self, where: CertificateFilter | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """The latest evaluation of every target matching `where`, by target key, after the key `after`."""
        f = where or CertificateFilter()
        matching = [
            evaluation
            for key, evaluation in sorted(self._latest.items())
            if (after is None or key > after) and memory_dashboard.matches(f, evaluation)
        ]
        return matching if limit is None else matching[:limit]

    async def evaluations_of(self, fingerprint: str, *, limit: int = 100) -> list[Evaluation]:
        """Evaluations of one certificate (canonical fingerprint), newest first: each run at its last sighting."""
        runs = self._evaluations.of_certificate(fingerprint)
        return sorted((r.last for r in runs), key=lambda e: (e.evaluated_at, e.target_key), reverse=True)[:limit]

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
        return sorted(
            (
                (event_id, alarm)
                for event_id, alarm in self._alarms
                if (fingerprint is None or alarm.key.fingerprint_sha256 == fingerprint)
                and (since is None or alarm.occurred_at >= since)
                and (alarm_id is None or alarm.alarm_id == alarm_id)
                and (alarm_ids is None or alarm.alarm_id in alarm_ids)
            ),
            key=lambda pair: (pair[1].occurred_at, pair[0]),
        )

    async def notifications(self, alarm_ids: list[str] | None = None) -> list[NotificationRecord]:
        """Delivery outcomes, oldest first, optionally of some alarms only."""
        chosen = [
            (event_id, record)
            for event_id, record in self._notifications
            if alarm_ids is None or record.alarm_id in alarm_ids
        ]
        return [record for _, record in sorted(chosen, key=lambda pair: (pair[1].at, pair[0]))]

    async def reports(self, *, limit: int = 100) -> list[ReportPublished]:
        """Published reports, newest period first."""
        by_key = sorted(self._reports.items())
        return [report for _, report in sorted(by_key, key=lambda item: item[1].period_start, reverse=True)][:limit]

    async def report_for(
        self, kind: str, start: datetime, end: datetime, *, name: str | None = None
    ) -> ReportPublished | None:
        """The report of one kind and period (a custom one: of that name), if it was published."""
        return self._report_for(kind, start, end, name)

    def _report_for(self, kind: str, start: datetime, end: datetime, name: str | None) -> ReportPublished | None:
        wanted = (kind, name or None, start, end)
        return next(
            (r for r in self._reports.values() if (r.kind, r.name or None, r.period_start, r.period_end) == wanted),
            None,
        )

    async def record_report(self, key: str, report: ReportPublished, announcement: CloudEvent) -> bool:
        """Claim the report's (kind, name, period) and enqueue its announcement atomically; False if taken."""
        if key in self._reports or self._report_for(report.kind, report.period_start, report.period_end, report.name):
            return False
        self._reports[key] = report
        self.outbox.append(announcement)
        return True

    async def request_acknowledgement(self, request: CloudEvent) -> bool:
        """Enqueue an `acknowledgement.requested.v1` command for the outbox relay; False if its id was enqueued
        before."""
        if any(event.id == request.id for event in self.outbox):
            return False
        self.outbox.append(request)
        return True

    async def statuses(self) -> list[TargetStatus]:
        """The status of every target's latest evaluation, at its last sighting, by target key."""
        return [status_of(evaluation) for _, evaluation in sorted(self._latest.items())]

    async def alarm_transitions(self, since: datetime) -> list[AlarmLine]:
        """The latest transition of every alarm not resolved and every transition since `since`, each once, as
        report lines, in the order they happened (then by event id)."""
        latest = {row.event_id for row in alarm_rows(self._alarms) if row.state != "resolved"}
        return [
            alarm_line(alarm)
            for event_id, alarm in await self.alarm_events()
            if event_id in latest or alarm.occurred_at >= since
        ]

    async def estate(self, as_of: datetime, *, since: datetime) -> list[TargetFacts]:
        """The facts of each target's latest evaluation in `[since, as_of)`, by target key (a tie: the one stored
        last)."""
        return self._evaluations.estate(as_of, since=since)

    async def first_seen(self, start: datetime, end: datetime) -> list[TargetFacts]:
        """The facts of the first evaluation of each certificate whose first evaluation ever is in `[start, end)`,
        by fingerprint (a tie: the one stored first)."""
        return self._evaluations.first_seen(start, end)

    async def alarm_steps(self, start: datetime, end: datetime) -> list[AlarmStep]:
        """The raised, acknowledged and resolved transitions in `[start, end)`, and the raise (whenever it was) of
        each alarm resolved in it, in time order (then by event id)."""
        resolved = {a.alarm_id for _, a in self._alarms if a.transition == "resolved" and start <= a.occurred_at < end}
        chosen = [
            (event_id, alarm)
            for event_id, alarm in self._alarms
            if alarm.transition in ("raised", "acknowledged", "resolved")
            and (start <= alarm.occurred_at < end or (alarm.transition == "raised" and alarm.alarm_id in resolved))
        ]
        return [alarm_step(alarm) for _, alarm in sorted(chosen, key=lambda pair: (pair[1].occurred_at, pair[0]))]

    async def daily_levels(self, start: datetime, end: datetime) -> list[DayLevels]:
        """For each UTC day of `[start, end)` with evaluations, by day: the targets at each level (only levels
        with any), each target by its last evaluation of the day (a tie: the one stored last)."""
        return self._evaluations.daily_levels(start, end)

    async def certificate_rows(
        self,
        where: CertificateFilter | None = None,
        *,
        sort: CertificateSort = "urgency",
        after: RowKey | None = None,
        limit: int,
    ) -> list[TargetRow]:
        """The rows of the targets matching `where`, in the order `sort`, after the row at `after`."""
        return memory_dashboard.certificate_rows(
            self._latest.values(), where or CertificateFilter(), sort=sort, after=after, limit=limit
        )

    async def count_certificates(self, where: CertificateFilter | None = None) -> int:
        """How many targets match `where`."""
        f = where or CertificateFilter()
        return sum(1 for evaluation in self._latest.values() if memory_dashboard.matches(f, evaluation))

    async def estate_counts(self, now: datetime) -> EstateCounts:
        """Targets per level and grade, distinct certificates, expired before `now`, alarms not resolved."""
        return memory_dashboard.estate_counts(list(self._latest.values()), self._alarms, now)

    async def facets(self, *, limit: int = 1000) -> Facets:
        """The distinct owners, servers and issuers of the targets, sorted, at most `limit` of each."""
        return memory_dashboard.facets(self._latest.values(), limit=limit)

    async def expiry_counts(self, start: datetime, end: datetime, *, unit: ExpiryUnit) -> list[ExpiryCount]:
        """Targets whose certificate expires in `[start, end)`, counted per UTC day or month and level."""
        return memory_dashboard.expiry_counts(self._latest.values(), start, end, unit=unit)

    async def expiring(self, start: datetime, end: datetime, *, per_day: int) -> list[TargetRow]:
        """Targets whose certificate expires in `[start, end)`, at most `per_day` of each UTC day."""
        return memory_dashboard.expiring(self._latest.values(), start, end, per_day=per_day)

    async def alarm_rows(
        self,
        where: AlarmFilter | None = None,
        *,
        order: AlarmOrder = "recent",
        after: AlarmKey | None = None,
        limit: int,
    ) -> list[AlarmRow]:
        """The alarms matching `where`, in the order `order`, after the alarm at `after`."""
        return memory_dashboard.select_alarms(
            self._alarms, where or AlarmFilter(), order=order, after=after, limit=limit
        )

    async def count_alarms(self, where: AlarmFilter | None = None) -> int:
        """How many alarms match `where`."""
        return len(
            memory_dashboard.select_alarms(
                self._alarms, where or AlarmFilter(), order="recent", after=None, limit=len(self._alarms)
            )
        )

    async def observations_of(
        self, fingerprint: str, *, limit: int, changes_only: bool = False
    ) -> list[ObservationRow]:
        """Evaluations of one certificate, newest first; `changes_only`: each target's first and level changes."""
        return self._evaluations.observations_of(fingerprint, limit=limit, changes_only=changes_only)
