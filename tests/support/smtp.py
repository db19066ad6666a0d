"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it accepts and refusing what it is told to."""

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


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


@contextmanager
def start_smtp_server(
    *, refuse: dict[str, str] | None = None, credentials: tuple[str, str] | None = None, **options: Any
) -> Iterator[SmtpServer]:
    """Run an SMTP server on a free 127.0.0.1 port for the life of the block (aiosmtpd options pass through)."""
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


def _password_checker(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting exactly one login."""

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (username.encode(), password.encode())
        return AuthResult(success=ok, handled=False)

    return authenticate
