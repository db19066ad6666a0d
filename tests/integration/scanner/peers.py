"""Test peers for the scanner's integration tests, all on 127.0.0.1 (or ::1): STARTTLS servers speaking the real
protocol bytes before upgrading with `loop.start_tls`, and a pyOpenSSL TLS server pumped over asyncio (the stdlib
server cannot staple OCSP responses)."""

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from OpenSSL import SSL

from tests.support.pki import NOW, Issued, write_chain
from tests.support.tls_server import server_context

#: A plaintext dialogue run by a peer; returns True when the connection should now upgrade to TLS.
PlainDialogue = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


def stdlib_context(tmp_path: Path, name: str, leaf: Issued, *chain: Issued) -> ssl.SSLContext:
    """A stdlib server context presenting leaf + chain."""
    cert, key = write_chain(tmp_path, name, leaf, *chain)
    return server_context(cert, key)


@contextlib.asynccontextmanager
async def _serving(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], host: str
) -> AsyncIterator[int]:
    """Serve `handle`; on exit, wait (briefly) for every connection handler, so no task outlives the test."""
    handlers: list[asyncio.Task[None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            async with asyncio.timeout(10):
                await handle(reader, writer)
        except (OSError, ssl.SSLError, SSL.Error, asyncio.IncompleteReadError, TimeoutError):
            pass  # the probe hangs up abruptly once it has what it came for
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        async with asyncio.timeout(3):  # Python 3.11's wait_closed does not wait for open connections
            await asyncio.gather(*handlers, return_exceptions=True)


@contextlib.asynccontextmanager
async def starttls_peer(dialogue: PlainDialogue, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A STARTTLS server: runs `dialogue`, then (if it says so) upgrades to TLS on the server side."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await dialogue(reader, writer):
            await writer.start_tls(ctx)  # loop.start_tls(server_side=True) underneath
            await reader.read(1024)

    async with _serving(handle, host) as port:
        yield port


def _outgoing(connection: SSL.Connection) -> bytes:
    chunks = []
    while True:
        try:
            chunks.append(connection.bio_read(65536))
        except SSL.WantReadError:
            return b"".join(chunks)


@contextlib.asynccontextmanager
async def openssl_server(ctx: SSL.Context, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A TLS server driven by pyOpenSSL on memory BIOs: completes the handshake, then waits for hang-up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = SSL.Connection(ctx, None)
        connection.set_accept_state()
        while True:
            try:
                connection.do_handshake()
                done = True
            except SSL.WantReadError:
                done = False
            writer.write(_outgoing(connection))
            await writer.drain()
            if done:
                break
            incoming = await reader.read(16384)
            if not incoming:
                return
            connection.bio_write(incoming)
        await reader.read(1024)

    async with _serving(handle, host) as port:
        yield port


def openssl_context(
    leaf: Issued, *chain: Issued, staple: bytes | None = None, max_version: int | None = None
) -> SSL.Context:
    """A pyOpenSSL server context presenting leaf + chain, stapling `staple` when the client asks for it."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate(leaf.cert)
    ctx.use_privatekey(leaf.key)  # type: ignore[arg-type]  # pyOpenSSL takes any cryptography private key
    for ca in chain:
        ctx.add_extra_chain_cert(ca.cert)
    if max_version is not None:
        ctx.set_max_proto_version(max_version)
    # An empty answer tells OpenSSL to staple nothing.
    ctx.set_ocsp_server_callback(lambda _conn, _data: staple or b"")
    return ctx


def ocsp_response(leaf: Issued, issuer: Issued, status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD) -> bytes:
    """A real OCSP response for `leaf`, signed by its issuer, as DER."""
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf.cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA256(),
            cert_status=status,
            this_update=NOW - dt.timedelta(hours=1),
            next_update=NOW + dt.timedelta(days=3),
            revocation_time=NOW - dt.timedelta(days=1) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
    )
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)
