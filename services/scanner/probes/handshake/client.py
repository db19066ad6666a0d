"""One TLS client handshake driven by hand over an asyncio stream: OpenSSL (pyOpenSSL) on memory BIOs.

The stdlib `ssl` module can neither request a stapled OCSP response nor read one, and it buffers whatever the
peer sends; pumping the bytes ourselves lets the probe ask for stapling (status_request), count every byte
the server sends against `ProbeLimits.max_handshake_bytes`, and stop the moment the cap is passed.

Certificates are never verified here (the evaluator judges them), so expired, self-signed and untrusted chains
are captured like any other. Failures raise `ProbeFailure(kind="tls")`; the caller bounds the time.
"""

import asyncio
import functools
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from services.scanner.domain.tls_names import iana_cipher_name, tls_version_name
from services.scanner.probes.errors import ProbeFailure
from shared.events import NegotiatedTls

_READ_SIZE = 16384
_OUTGOING_SIZE = 65536


@dataclass
class HandshakeResult:
    """What one handshake showed: the chain as presented (DER, in order), the negotiated facts, the staple.

    `ocsp_response` is None when the server stapled nothing (the probe always asks).
    """

    chain: list[bytes]
    negotiated: NegotiatedTls
    ocsp_response: bytes | None


class _Staple:
    """Where the OCSP callback leaves the stapled response of one connection."""

    def __init__(self) -> None:
        self.response: bytes | None = None


def _keep_staple(connection: SSL.Connection, response: bytes, _data: object) -> bool:
    staple: _Staple = connection.get_app_data()
    staple.response = response or None  # OpenSSL hands over an empty string when nothing was stapled
    return True  # never abort the handshake over a staple: judging it is the evaluator's job


@functools.cache
def client_context() -> SSL.Context:
    """The client context of every probe: no verification, every cipher and protocol OpenSSL still has."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")  # legacy servers must still be observable, not refused
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    # Servers without secure renegotiation are old, not absent: we must still see what they present.
    ctx.set_options(SSL.OP_LEGACY_SERVER_CONNECT)
    ctx.set_ocsp_client_callback(_keep_staple)
    return ctx


def _reason(exc: SSL.Error) -> str:
    """The most specific OpenSSL reason in a pyOpenSSL error (its args hold (library, function, reason))."""
    queue = exc.args[0] if exc.args else None
    if isinstance(queue, list) and queue and isinstance(queue[-1], tuple) and len(queue[-1]) == 3:
        return str(queue[-1][2])
    return str(exc) or type(exc).__name__


def _outgoing(connection: SSL.Connection) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(connection.bio_read(_OUTGOING_SIZE))
        except SSL.WantReadError:
            return b"".join(chunks)


async def handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, sni: str | None, max_bytes: int
) -> HandshakeResult:
    """Run a client handshake over `reader`/`writer`, asking for an OCSP staple and sending `sni` if given.

    Reads at most `max_bytes` from the server; raises ProbeFailure(kind="tls") on any failure.
    """
    connection = SSL.Connection(client_context(), None)
    staple = _Staple()
    connection.set_app_data(staple)
    connection.set_connect_state()
    if sni is not None:
        connection.set_tlsext_host_name(sni.encode("idna"))
    connection.request_ocsp()
    received = 0
    while True:
        try:
            connection.do_handshake()
            done = True
        except SSL.WantReadError:
            done = False
        except SSL.Error as exc:
            raise ProbeFailure("tls", f"TLS handshake failed: {_reason(exc)}") from None
        outgoing = _outgoing(connection)
        if outgoing:
            writer.write(outgoing)
            await _drain(writer)
        if done:
            break
        incoming = await _read(reader, received, max_bytes)
        received += len(incoming)
        connection.bio_write(incoming)
    return HandshakeResult(_chain(connection), _negotiated(connection), staple.response)


async def _drain(writer: asyncio.StreamWriter) -> None:
    try:
        await writer.drain()
    except OSError as exc:
        raise ProbeFailure("tls", f"connection lost during the TLS handshake: {exc.strerror or exc}") from None


async def _read(reader: asyncio.StreamReader, received: int, max_bytes: int) -> bytes:
    if received >= max_bytes:
        raise ProbeFailure("tls", f"the server sent {max_bytes} bytes without finishing the TLS handshake")
    try:
        incoming = await reader.read(min(_READ_SIZE, max_bytes - received))
    except OSError as exc:
        raise ProbeFailure("tls", f"connection lost during the TLS handshake: {exc.strerror or exc}") from None
    if not incoming:
        raise ProbeFailure("tls", "the server closed the connection during the TLS handshake")
    return incoming


def _chain(connection: SSL.Connection) -> list[bytes]:
    # On the client side OpenSSL's peer chain is exactly what the server sent, leaf first.
    return [cert.public_bytes(Encoding.DER) for cert in connection.get_peer_cert_chain(as_cryptography=True) or []]


def _negotiated(connection: SSL.Connection) -> NegotiatedTls:
    cipher = connection.get_cipher_name()
    return NegotiatedTls(
        version=tls_version_name(connection.get_protocol_version_name()),
        cipher_suite=iana_cipher_name(cipher) if cipher else "unknown",
        key_exchange_group=connection.get_group_name(),
    )
