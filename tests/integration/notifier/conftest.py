"""A real SMTP server (aiosmtpd on 127.0.0.1) that records what it accepts, and alarm-event builders."""

import ssl
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.events import AlarmEvent
from tests.support.alarms import build_alarm
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.smtp import SmtpServer, start_smtp_server

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


@pytest.fixture
def make_alarm() -> Callable[..., AlarmEvent]:
    """The alarm builder, as a fixture."""
    return build_alarm
