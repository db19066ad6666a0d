"""Alarm events as the alarmer publishes them, for the tests of their consumers."""

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import AlarmEvent, AlarmKey, CertificateInfo, Finding, KeyInfo, OwnerRef, TargetRef

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
