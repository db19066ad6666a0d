"""An SSLv2/SSLv3 server of our own on 127.0.0.1, since no local library serves those protocols any more.

It speaks just enough of each handshake to answer a ClientHello: an SSLv3 ServerHello, Certificate and
ServerHelloDone for the first of its suites the client offers (server preference), or an SSLv2
SERVER-HELLO listing the cipher kinds both sides share. Any TLS hello gets the SSLv3 answer (as real
SSLv3-only servers do, so clients see a downgrade); a server without SSLv3 closes on TLS hellos.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

SSL3 = b"\x03\x00"


@dataclass(frozen=True)
class LegacyConfig:
    """What the server speaks: SSLv3 `suites` (preference order) and SSLv2 cipher `kinds`; empty = off."""

    certificate: bytes
    suites: Sequence[int] = ()
    kinds: Sequence[int] = ()


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _record(content_type: int, payload: bytes) -> bytes:
    return bytes([content_type]) + SSL3 + len(payload).to_bytes(2, "big") + payload


def sslv3_flight(suite: int, certificate: bytes) -> bytes:
    """ServerHello (SSLv3, `suite`), Certificate and ServerHelloDone in one handshake record."""
    hello = SSL3 + bytes(32) + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
    certificates = len(certificate).to_bytes(3, "big") + certificate
    messages = (
        _handshake(2, hello) + _handshake(11, len(certificates).to_bytes(3, "big") + certificates) + _handshake(14, b"")
    )
    return _record(22, messages)


def sslv2_server_hello(kinds: Sequence[int], certificate: bytes) -> bytes:
    """An SSLv2 SERVER-HELLO (X.509 certificate type) offering `kinds`."""
    specs = b"".join(kind.to_bytes(3, "big") for kind in kinds)
    connection_id = bytes(16)
    body = (
        b"\x04\x00\x01\x00\x02"
        + len(certificate).to_bytes(2, "big")
        + len(specs).to_bytes(2, "big")
        + len(connection_id).to_bytes(2, "big")
        + certificate
        + specs
        + connection_id
    )
    return (0x8000 | len(body)).to_bytes(2, "big") + body


async def _answer_sslv2(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, config: LegacyConfig
) -> None:
    message = await reader.readexactly(((head[0] & 0x7F) << 8) | head[1])
    specs_length = int.from_bytes(message[3:5], "big")
    specs = message[9 : 9 + specs_length]
    offered = {int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3)}
    shared = [kind for kind in config.kinds if kind in offered]
    if shared:
        writer.write(sslv2_server_hello(shared, config.certificate))
    return bool(shared)


async def _answer_tls(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, config: LegacyConfig
) -> None:
    header = head + await reader.readexactly(3)
    payload = await reader.readexactly(int.from_bytes(header[3:5], "big"))
    body = payload[4:]
    session_id_length = body[34]
    at = 35 + session_id_length
    suites_length = int.from_bytes(body[at : at + 2], "big")
    suites = body[at + 2 : at + 2 + suites_length]
    offered = {int.from_bytes(suites[i : i + 2], "big") for i in range(0, len(suites), 2)}
    choice = next((suite for suite in config.suites if suite in offered), None)
    if not config.suites:
        return False
    if choice is None:
        writer.write(_record(21, b"\x02\x28"))  # fatal handshake_failure
    else:
        writer.write(sslv3_flight(choice, config.certificate))
    return True


@contextlib.asynccontextmanager
async def legacy_server(config: LegacyConfig) -> AsyncIterator[int]:
    """Serve SSLv2/SSLv3 hellos per `config` on 127.0.0.1; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):  # probes hang up without a goodbye; that is normal here
            head = await reader.readexactly(2)
            answered = False
            if head[0] & 0x80:
                answered = await _answer_sslv2(reader, writer, head, config)
            elif head[0] == 22:
                answered = await _answer_tls(reader, writer, head, config)
            if answered:  # otherwise hang up at once, as a server without that protocol does
                await writer.drain()
                await reader.read(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()
