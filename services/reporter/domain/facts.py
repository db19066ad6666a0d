"""The slim facts the weekly and monthly reports read from history, instead of whole evaluation objects.

At 100,000 targets a report cannot hold every evaluation object of a week or a month in memory, so the history
answers with these: one `TargetFacts` per target (what its latest evaluation as of a moment said), one `AlarmStep`
per alarm transition, and per-day level counts that the database adds up. `facts_of` and `alarm_step` say what
each fact means; the PostgreSQL history computes the same values in SQL and the contract tests hold both to them.

Pure: no clock, no I/O.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.events import AlarmEvent, Evaluation

#: A target not evaluated for this long has left the estate: its configuration dropped it or its scans stopped.
#: A target that is down is still evaluated (unreachable), so it stays.
ESTATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class LeafFacts:
    """The leaf certificate a target served."""

    fingerprint: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_bits: int | None
    key_curve: str | None
    signature_algorithm: str
    spki_sha256: str | None = None  # the key's identity; None in evaluations older than the field

    @property
    def lifetime_days(self) -> float:
        """Days from notBefore to notAfter."""
        return (self.not_after - self.not_before).total_seconds() / 86400.0


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """One target as its evaluation saw it: level, grade, owner, server, leaf, protocols, chain, finding codes."""

    target_key: str
    evaluated_at: datetime
    reachable: bool
    level: str
    grade: str | None
    owner: str | None
    server: str | None
    leaf: LeafFacts | None
    tls_versions: tuple[str, ...]
    chain_complete: bool
    chain_trusted: bool
    chain_ordered: bool
    finding_codes: tuple[str, ...]
    grade_reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlarmStep:
    """One alarm transition: which alarm, what happened, at what level, when, on which target and trigger."""

    alarm_id: str
    transition: str
    level: str
    at: datetime
    target_key: str
    trigger: str


@dataclass(frozen=True, slots=True)
class DayLevels:
    """How many targets stood at each level on one UTC day, each by its last evaluation of that day."""

    day: date
    counts: dict[str, int]


def facts_of(evaluation: Evaluation) -> TargetFacts:
    """The facts the reports read of one evaluation."""
    cert = evaluation.certificate
    leaf = (
        LeafFacts(
            fingerprint=cert.fingerprint_sha256,
            subject=cert.subject,
            issuer=cert.issuer,
            not_before=cert.not_before,
            not_after=cert.not_after,
            key_type=cert.key.type,
            key_bits=cert.key.bits,
            key_curve=cert.key.curve,
            signature_algorithm=cert.signature_algorithm,
            spki_sha256=cert.spki_sha256,
        )
        if cert is not None
        else None
    )
    security = evaluation.security
    return TargetFacts(
        target_key=evaluation.target_key,
        evaluated_at=evaluation.evaluated_at,
        reachable=evaluation.reachable,
        level=evaluation.alarm.level,
        grade=security.grade if security is not None else None,
        owner=evaluation.owner,
        server=evaluation.target.server,
        leaf=leaf,
        tls_versions=tuple(evaluation.tls.versions),
        chain_complete=evaluation.chain.complete,
        chain_trusted=evaluation.chain.trusted,
        chain_ordered=evaluation.chain.ordered,
        finding_codes=tuple(f.code for f in evaluation.findings),
        grade_reasons=tuple(cap.reason for cap in security.caps) if security is not None else (),
    )


def alarm_step(event: AlarmEvent) -> AlarmStep:
    """The step one alarm event records."""
    return AlarmStep(
        alarm_id=event.alarm_id,
        transition=event.transition,
        level=event.level,
        at=event.occurred_at,
        target_key=event.key.target_key,
        trigger=event.key.trigger,
    )
