"""Builders of reporter inputs (evaluations, alarm events) for the reporter's unit and integration tests."""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from services.reporter.domain.status import TargetStatus, status_of
from shared.events import (
    Acknowledgement,
    AlarmEvent,
    AlarmKey,
    AlarmSummary,
    AlarmTransition,
    CertificateInfo,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    ObservationError,
    SecurityInfo,
    TargetRef,
)
from shared.events.evaluation import Grade, Level

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


def evaluation(
    host: str,
    *,
    days: float | None,
    level: Level = "ok",
    grade: Grade = "A",
    subject: str | None = None,
    findings: list[Finding] | None = None,
    owner: str | None = None,
    error: ObservationError | None = None,
    evaluated_at: datetime = NOW - timedelta(minutes=5),
) -> Evaluation:
    """An evaluation of `host:443` whose certificate expires `days` days after NOW (no certificate if None)."""
    cert = None
    expiry = None
    if days is not None:
        not_after = NOW + timedelta(days=days)
        cert = CertificateInfo(
            fingerprint_sha256=hashlib.sha256(host.encode()).hexdigest(),
            subject=subject or f"CN={host}",
            issuer="CN=certmon Test CA",
            serial="1234",
            not_before=NOW - timedelta(days=300),
            not_after=not_after,
            san=[host],
            key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
            signature_algorithm="ecdsa-with-SHA256",
        )
        expiry = ExpiryInfo(days_remaining=days, status="valid", renewal_window="plan")
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host),
        target_key=f"{host}:443",
        observed_at=evaluated_at,
        evaluated_at=evaluated_at,
        reachable=error is None,
        error=error,
        certificate=cert,
        expiry=expiry,
        security=SecurityInfo(grade=grade, grade_ignoring_trust=grade, score=90) if cert else None,
        findings=findings or [],
        alarm=AlarmSummary(level=level),
        owner=owner,
    )


def alarm(
    alarm_id: str,
    transition: AlarmTransition,
    level: Level,
    at: datetime,
    host: str = "a.example",
    fingerprint: str = "ab" * 32,
    *,
    acknowledgement: Acknowledgement | None = None,
    cause: str | None = None,
) -> AlarmEvent:
    """An alarm transition of `host:443`'s expiry alarm; acknowledged while `acknowledgement` is given."""
    state = "resolved" if transition == "resolved" else "acknowledged" if acknowledgement else "open"
    return AlarmEvent(
        alarm_id=alarm_id,
        key=AlarmKey(target_key=f"{host}:443", fingerprint_sha256=fingerprint, trigger="expiry"),
        transition=transition,
        level=level,
        target=TargetRef(host=host, port=443),
        occurred_at=at,
        state=state,
        acknowledgement=acknowledgement,
        cause=cause,
    )


def statuses(evaluations: Iterable[Evaluation]) -> list[TargetStatus]:
    """The status reports' view of some evaluations, as the in-memory history projects them."""
    return [status_of(e) for e in evaluations]
