"""A real SMTP server (aiosmtpd on 127.0.0.1) that records what it accepts, and alarm-event builders."""

import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events import AlarmEvent, AlarmKey, CertificateInfo, Finding, KeyInfo, OwnerRef, TargetRef
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.smtp import SmtpServer, start_smtp_server

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FINGERPRINT = "3b" * 32


SmtpFactory = Callable[..., AbstractContextManager[SmtpServer]]


@pytest.fixture
def smtp_server() -> SmtpFactory:
    """Start an SMTP server on 127.0.0.1: `with smtp_server(refuse=, credentials=, **aiosmtpd options) as s:`."""
    return start_smtp_server


@dataclass(frozen=True)
class Pki:
    """A self-signed server certificate for 127.0.0.1 and a client context that trusts it."""

    cert_path: Path
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


@pytest.fixture(scope="module")
def smtp_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The STARTTLS certificate of the test SMTP server, written to a temporary directory."""
    directory = tmp_path_factory.mktemp("smtp-pki")
    root = make_ca("certmon SMTP Test Root")
    leaf = make_leaf(root, ["127.0.0.1", "localhost"])
    cert_path, key_path = write_chain(directory, "smtp", leaf)
    root_path = directory / "root.pem"
    root_path.write_bytes(root.pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    return Pki(root_path, server, ssl.create_default_context(cafile=str(root_path)))


def build_alarm(**overrides: Any) -> AlarmEvent:
    """A critical expiry alarm on shop.example.com:443 for alice and bob individually; fields overridable."""
    fields: dict[str, Any] = {
        "alarm_id": "alarm-1",
        "key": AlarmKey(target_key="shop.example.com:443", fingerprint_sha256=FINGERPRINT, trigger="expiry"),
        "transition": "raised",
        "level": "critical",
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
        "target": TargetRef(host="shop.example.com", port=443, sni="shop.example.com"),
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


@pytest.fixture
def make_alarm() -> Callable[..., AlarmEvent]:
    """The alarm builder, as a fixture."""
    return build_alarm
