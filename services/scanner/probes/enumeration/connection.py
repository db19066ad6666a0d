"""One probe connection: connect, optional STARTTLS, send one hello, read the answer, hang up.

Every phase has its deadline (connect, STARTTLS, reply) and the reply a byte cap. Nothing raises: the
answer is a `Reply` (accepted or refused) or a `Failure` (no answer could be had, or it was not the protocol).
"""

import asyncio
from dataclasses import dataclass
from typing import Literal

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.enumeration.records import MalformedReply, RecordReader
from services.scanner.probes.enumeration.reply import Refused, Reply, read_sslv2_reply, read_tls_reply
from services.scanner.probes.errors import ProbeFailure
from services.scanner.probes.starttls.negotiate import negotiate_starttls
from shared.events.target import Protocol

FailureKind = Literal["timeout", "refused", "protocol"]


@dataclass(frozen=True)
class Endpoint:
    """Where the probes connect: an address already checked against the scan policy, and what to say there."""

    address: str
    port: int
    server_name: str | None = None  # sent as SNI; None for IP-literal targets
    protocol: Protocol = "tls"


@dataclass(frozen=True)
class Failure:
    """No usable answer: the connection failed or timed out (`phase`), or the peer spoke no SSL/TLS."""

    kind: FailureKind
    message: str
    phase: str | None = None


async def exchange(
    endpoint: Endpoint, hello: bytes, *, limits: ProbeLimits, sslv2: bool = False, until_hello: bool = False
) -> Reply | Failure:
    """Send `hello` on a fresh connection and return the server's answer; never raises for peer behaviour."""
    try:
        async with asyncio.timeout(limits.connect_seconds):
            reader, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
    except TimeoutError:
        return Failure("timeout", f"connecting to {endpoint.address} timed out", phase="connect")
    except OSError as exc:
        return Failure("refused", f"cannot connect to {endpoint.address}: {exc.strerror or exc}")
    try:
        return await _converse(endpoint, reader, writer, hello, limits=limits, sslv2=sslv2, until_hello=until_hello)
    finally:
        writer.transport.abort()  # the probe never finishes a handshake; there is nothing to close politely


async def _converse(
    endpoint: Endpoint,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    hello: bytes,
    *,
    limits: ProbeLimits,
    sslv2: bool,
    until_hello: bool,
) -> Reply | Failure:
    try:
        async with asyncio.timeout(limits.handshake_seconds):
            await negotiate_starttls(
                endpoint.protocol, reader, writer, limits=limits, domain=endpoint.server_name or endpoint.address
            )
    except TimeoutError:
        return Failure("timeout", "the STARTTLS dialogue timed out", phase="starttls")
    except ProbeFailure as failure:
        return Failure("protocol", failure.error.message, phase="starttls")
    except OSError as exc:
        return Failure("protocol", f"connection lost during STARTTLS: {exc.strerror or exc}", phase="starttls")
    records = RecordReader(reader, limits.max_handshake_bytes)
    try:
        async with asyncio.timeout(limits.handshake_seconds):
            writer.write(hello)
            await writer.drain()
            if sslv2:
                return await read_sslv2_reply(records)
            return await read_tls_reply(records, until_hello=until_hello)
    except TimeoutError:
        return Failure("timeout", "no answer to the ClientHello in time", phase="handshake")
    except MalformedReply as exc:
        return Failure("protocol", str(exc))
    except ConnectionError:
        return Refused("the server reset the connection")
