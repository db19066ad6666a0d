"""Alarm events as the alarmer publishes them, for the tests of their consumers, and the evaluations that cause
them with the `certmon.yaml` that says who owns what, for the tests of the alarmer."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import parse_config
from shared.events import (
    AcknowledgementRequested,
    AlarmEvent,
    AlarmKey,
    AlarmSummary,
    CertificateInfo,
    CloudEvent,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    OwnerRef,
    TargetRef,
    make_event,
)
from shared.events.evaluation import Severity, Trigger
from shared.events.observation import ObservationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FINGERPRINT = "3b" * 32


def build_alarm(**overrides: Any) -> AlarmEvent:
    """A critical expiry alarm on shop.example.com:443 owned by shop-team; any field can be overridden."""
    fields: dict[str, Any] = {
        "alarm_id": "alarm-1",
        "key": AlarmKey(target_key="shop.example.com:443", fingerprint_sha256=FINGERPRINT, trigger="expiry"),
        "transition": "raised",
        "level": "critical",
        "previous_level": None,
        "triggers": ["expiry"],
        "findings": [Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
        "owners": [
            OwnerRef(
                name="shop-team",
                email=["alice@example.com", "bob@example.com"],
                delivery="individual",
                rule="certificate[0] san=*.shop.example.com",
            )
        ],
        "target": TargetRef(host="shop.example.com", port=443, sni="shop.example.com", server="web-01"),
        "certificate": CertificateInfo(
            fingerprint_sha256=FINGERPRINT,
            subject="CN=shop.example.com",
            issuer="CN=Example Issuing CA",
            serial="0a1b",
            not_before=NOW - timedelta(days=85),
            not_after=NOW + timedelta(days=5, hours=6),
            san=["shop.example.com"],
            key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
            signature_algorithm="ecdsa-with-SHA256",
        ),
        "days_remaining": 5.25,
        "occurred_at": NOW,
    }
    fields.update(overrides)
    return AlarmEvent(**fields)


#: Owners by certificate rule, by server and by default; `unreachable` is critical after two failures.
ALARMER_CONFIG = parse_config(
    {
        "defaults": {"owner": "security-team", "unreachable_critical_after": 2},
        "channels": {"email": {"host": "smtp.example.com", "from": "certmon@example.com"}},
        "owners": {
            "security-team": {"email": ["secops@example.com"]},
            "platform-team": {"email": ["platform@example.com"]},
            "shop-team": {"email": ["alice@example.com", "bob@example.com"], "delivery": "individual"},
        },
        "servers": {"web-01": {"addresses": ["10.0.0.5"], "owner": "platform-team"}},
        "targets": [
            {"host": "www.shop.example.com", "port": 443, "server": "web-01"},
            {"host": "api.example.com", "port": 443, "server": "web-01"},
            {"host": "blog.example.com", "port": 443, "server": "web-01"},
            {"host": "intranet.example.com", "port": 443},
        ],
        "certificates": [
            {"match": {"san": "*.shop.example.com"}, "owner": "shop-team", "critical": True},
            {"match": {"san": "api.example.com"}, "owner": "shop-team"},
        ],
    }
)

WITHIN_30 = Finding(code="expiry.within_30_days", severity="warning", message="expires in 20 days", trigger="expiry")
WITHIN_7 = Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days", trigger="expiry")
_minutes = itertools.count()


def finding(code: str, severity: Severity, trigger: Trigger | None) -> Finding:
    """A finding as the evaluator reports it."""
    return Finding(code=code, severity=severity, message=code, trigger=trigger)


def evaluation(host: str, fingerprint: str = "a" * 64, *findings: Finding) -> Evaluation:
    """A reachable target's evaluation, observed a minute after the previous one built here."""
    at = NOW + timedelta(minutes=next(_minutes))
    certificate = CertificateInfo(
        fingerprint_sha256=fingerprint,
        subject=f"CN={host}",
        issuer="CN=Example CA",
        serial="01",
        not_before=NOW - timedelta(days=70),
        not_after=NOW + timedelta(days=20),
        san=[host],
        key=KeyInfo(type="EC", bits=256, curve="secp256r1"),
        signature_algorithm="ecdsa-with-SHA256",
    )
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host, server="web-01" if host != "intranet.example.com" else None),
        target_key=f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=True,
        certificate=certificate,
        expiry=ExpiryInfo(days_remaining=20.0, status="expiring_soon", renewal_window="urgent"),
        findings=list(findings),
        alarm=AlarmSummary(level="ok"),
    )


def unreachable(host: str) -> Evaluation:
    """An evaluation of a target that refused the connection."""
    at = NOW + timedelta(minutes=next(_minutes))
    return Evaluation(
        target=TargetRef(host=host, port=443, sni=host),
        target_key=f"{host}:443",
        observed_at=at,
        evaluated_at=at,
        reachable=False,
        error=ObservationError(kind="refused", message="connection refused"),
        findings=[finding("endpoint.unreachable", "warning", "reachability")],
        alarm=AlarmSummary(level="warning", triggers=["reachability"]),
    )


def payloads(events: list[CloudEvent]) -> list[AlarmEvent]:
    """The alarm payloads of published events."""
    return [AlarmEvent.model_validate(event.data) for event in events]


class ManualClock:
    """A clock that stands still until a test moves it on."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """The time the test set."""
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move on by a `timedelta(**delta)`; returns the new time."""
        self.now += timedelta(**delta)
        return self.now


def acknowledgement_request(alarm_id: str, by: str = "alice@example.com", **fields: Any) -> CloudEvent:
    """An `acknowledgement.requested.v1` event for `alarm_id`, as the reporter's API sends it."""
    request = AcknowledgementRequested(alarm_id=alarm_id, by=by, requested_at=NOW, **fields)
    return make_event("acknowledgement.requested.v1", request, source="certmon/reporter")
