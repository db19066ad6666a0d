"""A real SMTP server (aiosmtpd on 127.0.0.1) that records what it accepts, and alarm-event builders."""

import email
import email.policy
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from shared.events import AlarmEvent, AlarmKey, CertificateInfo, Finding, KeyInfo, OwnerRef, TargetRef
from tests.support.pki import make_ca, make_leaf, write_chain

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FINGERPRINT = "3b" * 32


@dataclass
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message and refuses the recipients it is told to."""

    refuse: dict[str, str] = field(default_factory=dict)  # address → SMTP reply, e.g. "550 5.1.1 no such user"
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept a recipient unless it is in `refuse`."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        """Keep the message."""
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    """A running test SMTP server."""

    port: int
    recorder: Recorder

    @property
    def received(self) -> list[Received]:
        """Messages accepted so far."""
        return self.recorder.received


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SmtpFactory = Callable[..., AbstractContextManager[SmtpServer]]


@pytest.fixture
def smtp_server() -> SmtpFactory:
    """Start an SMTP server on 127.0.0.1: `with smtp_server(refuse=, credentials=, **aiosmtpd options) as s:`."""

    @contextmanager
    def start(
        *, refuse: dict[str, str] | None = None, credentials: tuple[str, str] | None = None, **options: Any
    ) -> Iterator[SmtpServer]:
        recorder = Recorder(refuse=dict(refuse or {}))
        port = _free_port()
        if credentials is not None:
            options["authenticator"] = _password_checker(*credentials)
        controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
        controller.start()
        try:
            yield SmtpServer(port, recorder)
        finally:
            controller.stop()

    return start


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


def _password_checker(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting exactly one login."""

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (username.encode(), password.encode())
        return AuthResult(success=ok, handled=False)

    return authenticate


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
