"""What the reporter's handlers, publisher and HTTP app need from storage: a history store.

Two adapters pass the same contract tests: PostgreSQL (`adapters.history`) and the in-memory twin
(`adapters.memory`) the unit tests use. The semantics both keep:

- Each `record_*` claims the consumed event id first; an id seen before (by any `record_*`) changes nothing
  and answers False.
- A target's latest evaluation is the one evaluated last, whatever order the events arrived in (on a tie, the
  one stored last).
- An evaluation that says what its target's evaluation in force at its time said, but for its timestamps, is a
  sighting of it (`domain.sightings`): readers see that run once, at its last sighting (a level change: at its
  first), and the reports read its sightings as evenly spaced between its first and last.
- `record_evaluations` stores several evaluations in one transaction, exactly as `record_evaluation` on each in
  order would: an id seen before, or earlier in the list, answers False and changes nothing; an evaluation may be
  a sighting of a run an earlier one in the list started; the latest is chosen as above (a tie: the later in the
  list).
- `record_report` claims a report's key and its (kind, name, period) together with enqueuing its announcement,
  so a period is reported, and announced, once per kind (and custom report name).
- `request_acknowledgement` enqueues an `acknowledgement.requested.v1` command in the same outbox; an event id
  enqueued before is not enqueued again, so a request repeated with the same id leaves once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from services.reporter.domain.compliance import ComplianceReport
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
from services.reporter.domain.report import AlarmLine, StatusReport
from services.reporter.domain.status import TargetStatus
from services.reporter.domain.trends import WeeklyReport
from services.reporter.domain.views import NotificationRecord
from shared.config.reports import ReportFormat
from shared.events import AlarmEvent, AlarmState, CloudEvent, Evaluation, NotificationResult, ReportPublished


@dataclass(frozen=True)
class CertificateFilter:
    """Which latest evaluations to list (None: any); `q` matches target, subject, issuer, SAN, fingerprint."""

    level: str | None = None
    grade: str | None = None
    owner: str | None = None
    server: str | None = None
    q: str | None = None
    issuer: str | None = None
    fingerprint: str | None = None
    #: notAfter in `[expires_from, expires_before)`; either bound may be open. Targets without a certificate never
    #: match a bound.
    expires_from: datetime | None = None
    expires_before: datetime | None = None


#: The orders of the certificates list: most severe level then soonest expiry; soonest expiry; target key. Each
#: ends with the target key, and targets without a certificate come after every certificate.
CertificateSort = Literal["urgency", "expiry", "target"]
#: The orders of the alarm lists: latest change first; most severe level first, then latest change. Ties: the
#: larger alarm id first.
AlarmOrder = Literal["recent", "severity"]
#: The periods expirations are counted by: UTC days or UTC calendar months.
ExpiryUnit = Literal["day", "month"]


@dataclass(frozen=True)
class AlarmFilter:
    """Which alarms to list (empty or None: any): any of `states`, a level, an owner among the alarm's owners, and
    alive at some moment of `[active_from, active_until)` (raised before its end, not resolved before its start)."""

    states: tuple[AlarmState, ...] = ()
    level: str | None = None
    owner: str | None = None
    active_from: datetime | None = None
    active_until: datetime | None = None


class HistoryStore(Protocol):
    """Evaluations, alarm transitions, delivery outcomes and published reports, as the reporter keeps them."""

    async def ping(self) -> None:
        """Raise unless the store answers."""

    async def prune(self, now: datetime, *, retention: timedelta) -> int:
        """Delete targets not evaluated, runs not seen and alarms resolved for longer than `retention` before
        `now` (a target's latest run stays while the target does), and the event ids older than the dedup window;
        returns how many rows went."""

    async def record_evaluation(self, event_id: str, evaluation: Evaluation) -> bool:
        """Store an evaluation, the target's latest unless a newer one is there; False on redelivery."""

    async def record_evaluations(self, items: Sequence[tuple[str, Evaluation]]) -> list[bool]:
        """`record_evaluation` on each `(event_id, evaluation)` in order, in one transaction; what each answered."""

    async def record_alarm(self, event_id: str, alarm: AlarmEvent) -> bool:
        """Store one alarm transition; False on redelivery."""

    async def record_notification(self, event_id: str, result: NotificationResult, *, ok: bool) -> bool:
        """Store one delivery outcome; False on redelivery."""

    async def latest(
        self, where: CertificateFilter | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[Evaluation]:
        """The latest evaluation of every target matching `where`, by target key, after the key `after`."""

    async def evaluations_of(self, fingerprint: str, *, limit: int = 100) -> list[Evaluation]:
        """Evaluations of one certificate (canonical fingerprint), newest first."""

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

    async def notifications(self, alarm_ids: list[str] | None = None) -> list[NotificationRecord]:
        """Delivery outcomes, oldest first, optionally of some alarms only."""

    async def reports(self, *, limit: int = 100) -> list[ReportPublished]:
        """Published reports, newest period first."""

    async def report_for(
        self, kind: str, start: datetime, end: datetime, *, name: str | None = None
    ) -> ReportPublished | None:
        """The report of one kind and period (a custom one: of that name), if it was published."""

    async def record_report(self, key: str, report: ReportPublished, announcement: CloudEvent) -> bool:
        """Claim the report's (kind, name, period) and enqueue its announcement atomically; False if taken."""

    async def request_acknowledgement(self, request: CloudEvent) -> bool:
        """Enqueue an `acknowledgement.requested.v1` command for the outbox relay; False if its id was enqueued
        before."""

    # What the daily and custom status reports read: each target's status (`domain.status`) and the alarms they
    # list, so a report over 100,000 targets never holds their evaluation objects nor the whole alarm history.

    async def statuses(self) -> list[TargetStatus]:
        """The status of every target's latest evaluation, at its last sighting, by target key."""

    async def alarm_transitions(self, since: datetime) -> list[AlarmLine]:
        """The latest transition of every alarm not resolved (open or acknowledged) and every transition since
        `since`, each once, as the lines a report lists (not whole events), in the order they happened (then by
        event id)."""

    # What the weekly and monthly reports read: slim facts, so a report over 100,000 targets never holds every
    # evaluation object of its period (see `domain.facts`).

    async def estate(self, as_of: datetime, *, since: datetime) -> list[TargetFacts]:
        """The facts of each target's latest evaluation in `[since, as_of)`, by target key (a target evaluated
        twice at the same moment: either)."""

    async def first_seen(self, start: datetime, end: datetime) -> list[TargetFacts]:
        """The facts of the first evaluation of each certificate whose first evaluation ever is in `[start, end)`,
        by fingerprint (two first evaluations at the same moment: either)."""

    async def alarm_steps(self, start: datetime, end: datetime) -> list[AlarmStep]:
        """The raised, acknowledged and resolved transitions in `[start, end)`, and the raise (whenever it was) of
        each alarm resolved in it, in time order (then by event id)."""

    async def daily_levels(self, start: datetime, end: datetime) -> list[DayLevels]:
        """For each UTC day of `[start, end)` with evaluations, by day: the targets at each level (only levels
        with any), each target by its last evaluation of the day."""

    # What the dashboard's pages read: slim rows from columns, filtered, ordered and paged in the store, so a page
    # of an estate of 100,000 targets reads a page of rows (see `domain.estate`).

    async def certificate_rows(
        self,
        where: CertificateFilter | None = None,
        *,
        sort: CertificateSort = "urgency",
        after: RowKey | None = None,
        limit: int,
    ) -> list[TargetRow]:
        """The rows of the targets matching `where`, in the order `sort`, after the row at `after`."""

    async def count_certificates(self, where: CertificateFilter | None = None) -> int:
        """How many targets match `where`."""

    async def estate_counts(self, now: datetime) -> EstateCounts:
        """Targets per level and grade, distinct certificates, expired before `now`, alarms not resolved."""

    async def facets(self, *, limit: int = 1000) -> Facets:
        """The distinct owners, servers and issuers of the targets, sorted, at most `limit` of each."""

    async def expiry_counts(self, start: datetime, end: datetime, *, unit: ExpiryUnit) -> list[ExpiryCount]:
        """Targets whose certificate expires in `[start, end)`, counted per UTC day or month and level (only
        counts above 0), by period then level."""

    async def expiring(self, start: datetime, end: datetime, *, per_day: int) -> list[TargetRow]:
        """The rows of targets whose certificate expires in `[start, end)`, at most `per_day` of each UTC day (the
        first by urgency), by notAfter then target key."""

    async def alarm_rows(
        self,
        where: AlarmFilter | None = None,
        *,
        order: AlarmOrder = "recent",
        after: AlarmKey | None = None,
        limit: int,
    ) -> list[AlarmRow]:
        """The alarms matching `where`, in the order `order`, after the alarm at `after`."""

    async def count_alarms(self, where: AlarmFilter | None = None) -> int:
        """How many alarms match `where`."""

    async def observations_of(
        self, fingerprint: str, *, limit: int, changes_only: bool = False
    ) -> list[ObservationRow]:
        """Evaluations of one certificate, newest first (a tie: the larger target key first); `changes_only`: only
        each target's first and those whose level differs from the target's evaluation before."""


class BucketError(Exception):
    """The storage refused or failed a write or a listing."""


class ObjectNotFound(BucketError):
    """No object has the key asked for (or the key names nothing the bucket may serve)."""


class Bucket(Protocol):
    """Object storage for reports."""

    @property
    def location(self) -> str:
        """The storage that object keys are relative to (`s3://bucket` or an absolute folder path)."""

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Write (or overwrite) the object named `key` under the prefix; returns its object key."""

    async def put_file(self, key: str, source: Path, content_type: str) -> str:
        """`put` with the bytes of the file `source`, read from disk as they are written (a report's objects run
        to tens of megabytes)."""

    async def list(self, prefix: str = "") -> list[str]:
        """Object keys of the objects whose name under the prefix starts with `prefix`, sorted."""

    async def get(self, key: str) -> bytes:
        """The bytes of the object whose object key (as `put` and `list` answer it) is `key`; `ObjectNotFound`
        if there is none under the prefix."""


#: Every kind of report: the status of the estate (daily, custom), the weekly trends, the monthly compliance.
AnyReport = StatusReport | WeeklyReport | ComplianceReport


class ReportRendering(Protocol):
    """Turns a report into the bytes of its objects in the bucket."""

    def to_json(self, report: AnyReport) -> bytes:
        """The report as JSON."""

    def to_html(self, report: AnyReport) -> str:
        """The report as a self-contained HTML page."""

    def render(self, report: AnyReport, fmt: ReportFormat) -> bytes:
        """The report in one format: JSON, CSV, HTML or PDF."""

    def write(self, report: AnyReport, fmt: ReportFormat, out: BinaryIO) -> None:
        """Write the report in one format to `out` as it is rendered (what `render` returns, never held whole)."""
