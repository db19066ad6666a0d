"""The slim rows the dashboard's lists show, so a page of an estate of 100,000 targets never reads every
evaluation object: one `TargetRow` per target (its latest evaluation), one `AlarmRow` per alarm (as of its latest
transition), the estate's counts, and one `ObservationRow` per evaluation of a certificate.

`target_row`, `searchable_text` and `alarm_rows` say what each row means; the PostgreSQL history keeps the same
values in columns and the contract tests hold both adapters to them. Pure: no clock, no I/O.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from shared.events import AlarmEvent, Evaluation
from shared.events.evaluation import LEVEL_ORDER

_SECONDS_PER_DAY = 86400.0
#: Where a target without a certificate sorts by expiry: after every certificate.
NEVER = datetime.max.replace(tzinfo=UTC)


def urgency(level: str) -> int:
    """The sort rank of a level, ascending: critical 0, warning 1, info 2, ok 3."""
    return 3 - LEVEL_ORDER.get(level, 0)


@dataclass(frozen=True, slots=True)
class RowKey:
    """Where a target stands in the certificates list, whatever its order: level, expiry, target key."""

    level: str
    not_after: datetime | None
    target_key: str


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A target and the certificate its latest evaluation saw (no certificate: it could not be observed)."""

    target_key: str
    level: str
    grade: str | None
    owner: str | None
    server: str | None
    fingerprint: str | None
    subject: str | None
    issuer: str | None
    not_after: datetime | None
    reachable: bool
    evaluated_at: datetime

    @property
    def key(self) -> RowKey:
        """The row's place in the list, for the next page's cursor."""
        return RowKey(self.level, self.not_after, self.target_key)

    def days_left(self, now: datetime) -> float | None:
        """Days from `now` to notAfter, negative once expired; None without a certificate."""
        return None if self.not_after is None else (self.not_after - now).total_seconds() / _SECONDS_PER_DAY


def target_row(evaluation: Evaluation) -> TargetRow:
    """The row of a target whose latest evaluation is `evaluation`."""
    cert = evaluation.certificate
    return TargetRow(
        target_key=evaluation.target_key,
        level=evaluation.alarm.level,
        grade=evaluation.security.grade if evaluation.security is not None else None,
        owner=evaluation.owner,
        server=evaluation.target.server,
        fingerprint=cert.fingerprint_sha256 if cert else None,
        subject=cert.subject if cert else None,
        issuer=cert.issuer if cert else None,
        not_after=cert.not_after if cert else None,
        reachable=evaluation.reachable,
        evaluated_at=evaluation.evaluated_at,
    )


def searchable_text(evaluation: Evaluation) -> str:
    """The text a search (`q`) looks in: target key, fingerprint, subject, issuer and the SAN list as JSON,
    space-separated."""
    cert = evaluation.certificate
    if cert is None:
        return evaluation.target_key
    san = json.dumps(cert.san, ensure_ascii=False)
    return " ".join((evaluation.target_key, cert.fingerprint_sha256, cert.subject, cert.issuer, san))


@dataclass(frozen=True, slots=True)
class EstateCounts:
    """The estate at a glance: targets per level and per grade (every one listed, maybe 0), distinct
    certificates, targets whose certificate has expired, and alarms not resolved by state."""

    targets: int
    certificates: int
    expired: int
    by_level: dict[str, int]
    by_grade: dict[str, int]
    open_alarms: int
    acknowledged_alarms: int


@dataclass(frozen=True, slots=True)
class Facets:
    """The values the certificates list can be filtered by, each sorted: owners, servers and issuers."""

    owners: tuple[str, ...]
    servers: tuple[str, ...]
    issuers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExpiryCount:
    """How many targets at `level` have a certificate expiring in the UTC day or month starting on `start`."""

    start: date
    level: str
    count: int


@dataclass(frozen=True, slots=True)
class ObservationRow:
    """One evaluation of a certificate at one target, as seen at `evaluated_at`: the last sighting of an
    unchanged run of `seen_count` evaluations first seen at `first_seen_at` (a level change: its first)."""

    evaluated_at: datetime
    target_key: str
    level: str
    grade: str | None
    days_remaining: float | None
    reachable: bool
    first_seen_at: datetime
    seen_count: int = 1


@dataclass(frozen=True, slots=True)
class AlarmKey:
    """Where an alarm stands in the alarm lists, whatever their order: level, last change, alarm id."""

    level: str
    updated_at: datetime
    alarm_id: str


@dataclass(frozen=True, slots=True)
class AlarmRow:
    """An alarm as of its latest transition (by time, then by event id), and when it was first raised."""

    alarm_id: str
    event_id: str
    state: str
    level: str
    trigger: str
    target_key: str
    fingerprint: str
    owners: tuple[str, ...]
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    raised_at: datetime
    updated_at: datetime

    @property
    def key(self) -> AlarmKey:
        """The row's place in the list, for the next page's cursor."""
        return AlarmKey(self.level, self.updated_at, self.alarm_id)


def alarm_rows(events: Iterable[tuple[str, AlarmEvent]]) -> list[AlarmRow]:
    """One row per alarm of some `(event_id, alarm event)` pairs, in no particular order."""
    first: dict[str, datetime] = {}
    last: dict[str, tuple[str, AlarmEvent]] = {}
    for event_id, event in events:
        first[event.alarm_id] = min(first.get(event.alarm_id, event.occurred_at), event.occurred_at)
        current = last.get(event.alarm_id)
        if current is None or (current[1].occurred_at, current[0]) <= (event.occurred_at, event_id):
            last[event.alarm_id] = (event_id, event)
    return [_alarm_row(event_id, event, first[event.alarm_id]) for event_id, event in last.values()]


def _alarm_row(event_id: str, event: AlarmEvent, raised_at: datetime) -> AlarmRow:
    ack = event.acknowledgement
    return AlarmRow(
        alarm_id=event.alarm_id,
        event_id=event_id,
        state=event.state,
        level=event.level,
        trigger=event.key.trigger,
        target_key=event.key.target_key,
        fingerprint=event.key.fingerprint_sha256,
        owners=tuple(owner.name for owner in event.owners),
        acknowledged_by=ack.by if ack else None,
        acknowledged_at=ack.at if ack else None,
        raised_at=raised_at,
        updated_at=event.occurred_at,
    )
