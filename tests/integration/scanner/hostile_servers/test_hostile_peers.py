"""A hostile network is normal: silent, trickling, endless, enormous and garbage peers each end in one
observation with a precise error kind and message, IPv6 works, and the address policy holds."""

import asyncio
import base64
import contextlib
import datetime as dt
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509

from services.scanner.domain.limits import ProbeLimits, limits_from, networks
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.config import parse_config
from shared.events import Observation, Target
from shared.settings import Settings
from tests.integration.scanner.peers import stdlib_context
from tests.support.pki import Issued, make_ca, make_leaf
from tests.support.tls_server import raw_server, tls_server

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Hostile:
    """A `raw_server` behaviour wrapper that records when the peer's connection ended (so tests can wait)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        self.ended = asyncio.Event()
        self.sent = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                await self._behaviour(reader, writer)
        finally:
            writer.close()
            self.ended.set()

    async def wait_ended(self) -> None:
        """Wait (briefly) until the connection is over: the probe left nothing open."""
        async with asyncio.timeout(3):
            await self.ended.wait()


async def _observe(port: int, limits: ProbeLimits = FAST, host: str = "127.0.0.1") -> Observation:
    return await observe_endpoint(Target(host=host, port=port), now=WHEN, limits=limits)


@pytest.fixture(scope="module")
def issuer() -> Issued:
    """An intermediate CA under a test root."""
    return make_ca("certmon Hostile Intermediate", issuer=make_ca())


@pytest.fixture
def healthy(tmp_path: Path, issuer: Issued) -> tuple[ssl.SSLContext, Issued]:
    """A well-behaved TLS server context and its leaf."""
    leaf = make_leaf(issuer, ["localhost", "127.0.0.1", "::1"])
    return stdlib_context(tmp_path, "healthy", leaf, issuer), leaf


async def _until_hang_up(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


async def test_silent_server_times_out_in_the_handshake_phase() -> None:
    """A peer that accepts and never answers: `timeout` in phase `handshake`, within the handshake budget."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _until_hang_up(reader)

    peer = Hostile(silent)
    async with raw_server(peer) as port:
        obs = await _observe(port, ProbeLimits(handshake_seconds=0.3, target_seconds=5))
        await peer.wait_ended()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase, obs.error.message) == (
        "timeout",
        "handshake",
        "the TLS handshake timed out",
    )
    assert obs.duration_ms is not None and 250 <= obs.duration_ms < 2000


def _trickle(upstream: int, delay: float) -> Hostile:
    """A proxy to a real TLS server that passes the server's bytes on one at a time, `delay` apart."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        forward = asyncio.create_task(_pipe(reader, up_writer))
        try:
            while byte := await up_reader.read(1):
                writer.write(byte)
                await writer.drain()
                await asyncio.sleep(delay)
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await forward
            up_writer.close()

    return Hostile(relay)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()


async def test_byte_by_byte_server_still_yields_the_chain(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """A handshake delivered one byte per write is reassembled: the chain is captured."""
    async with tls_server(healthy[0]) as upstream:
        peer = _trickle(upstream, 0)
        async with raw_server(peer) as port:
            obs = await _observe(port)
            await peer.wait_ended()
    assert obs.error is None
    assert len(obs.chain) == 2


@pytest.mark.parametrize(
    ("limits", "phase"),
    [
        (ProbeLimits(handshake_seconds=0.4, target_seconds=5), "handshake"),
        (ProbeLimits(handshake_seconds=5, target_seconds=0.4), "target"),
    ],
)
async def test_slow_byte_by_byte_server_is_bounded_by_the_timeouts(
    healthy: tuple[ssl.SSLContext, Issued], limits: ProbeLimits, phase: str
) -> None:
    """A server trickling its handshake slowly ends in a timeout in whichever budget runs out first."""
    async with tls_server(healthy[0]) as upstream:
        peer = _trickle(upstream, 0.02)
        async with raw_server(peer) as port:
            obs = await _observe(port, limits)
            await peer.wait_ended()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("timeout", phase)
    assert obs.duration_ms is not None and obs.duration_ms < 1500


async def test_endless_stream_of_tls_records_stops_at_the_byte_cap() -> None:
    """Endless one-byte handshake records (a ServerHello that never ends) stop at `max_handshake_bytes`."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)  # the ClientHello
        # A ServerHello header declaring 20000 bytes (OpenSSL's maximum), then its body one byte per record.
        writer.write(b"".join(b"\x16\x03\x03\x00\x01" + bytes([b]) for b in b"\x02\x00\x4e\x20"))
        record = b"\x16\x03\x03\x00\x01\x00" * 1000
        while True:
            writer.write(record)
            await writer.drain()
            peer.sent += len(record)

    peer = Hostile(endless)
    limits = ProbeLimits(handshake_seconds=5, target_seconds=5, max_handshake_bytes=16384)
    async with raw_server(peer) as port:
        obs = await _observe(port, limits)
        await peer.wait_ended()
    assert obs.error is not None
    assert obs.error.kind == "tls"
    assert obs.error.message == "the server sent 16384 bytes without finishing the TLS handshake"
    assert peer.sent > 16384  # the server had more to say; the probe stopped reading and hung up


def _enormous_leaf(issuer: Issued, size: int) -> Issued:
    """A leaf carrying a `size`-byte private extension: a certificate message as large as a hostile server likes."""
    leaf = make_leaf(issuer, ["127.0.0.1"])
    padding = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x83" + size.to_bytes(3))
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.cert.subject)
        .issuer_name(leaf.cert.issuer)
        .public_key(leaf.cert.public_key())
        .serial_number(leaf.cert.serial_number)
        .not_valid_before(leaf.cert.not_valid_before_utc)
        .not_valid_after(leaf.cert.not_valid_after_utc)
        .add_extension(x509.UnrecognizedExtension(padding.oid, padding.value + os.urandom(size)), critical=False)
    )
    return Issued(builder.sign(issuer.key, leaf.cert.signature_hash_algorithm), leaf.key)  # type: ignore[arg-type]


async def test_enormous_certificate_message_stops_at_the_byte_cap(tmp_path: Path, issuer: Issued) -> None:
    """An 80 kB certificate is more than a 50 kB handshake cap: a `tls` error, not 80 kB read."""
    ctx = stdlib_context(tmp_path, "enormous", _enormous_leaf(issuer, 80_000), issuer)
    async with tls_server(ctx) as port:
        obs = await _observe(port, ProbeLimits(handshake_seconds=5, target_seconds=5, max_handshake_bytes=50_000))
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == (
        "tls",
        "the server sent 50000 bytes without finishing the TLS handshake",
    )


async def test_certificate_message_over_openssls_limit_is_a_tls_error(tmp_path: Path, issuer: Issued) -> None:
    """A 200 kB certificate message is refused by OpenSSL itself as soon as its header declares the size."""
    ctx = stdlib_context(tmp_path, "huge", _enormous_leaf(issuer, 200_000), issuer)
    async with tls_server(ctx) as port:
        obs = await _observe(port, ProbeLimits(handshake_seconds=5, target_seconds=5))
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == ("tls", "TLS handshake failed: excessive message size")


async def test_garbage_answer_is_a_tls_error_naming_openssls_reason() -> None:
    """Random bytes in answer to the ClientHello: `tls`, with OpenSSL's reason."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"\x00\xffHTTP/1.0 400 nope\r\n" + os.urandom(512))
        await writer.drain()
        await _until_hang_up(reader)

    peer = Hostile(garbage)
    async with raw_server(peer) as port:
        obs = await _observe(port)
        await peer.wait_ended()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.message) == ("tls", "TLS handshake failed: wrong version number")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
async def test_ipv6_endpoint_is_observed(healthy: tuple[ssl.SSLContext, Issued], host: str) -> None:
    """An endpoint on ::1, named bare or bracketed, is observed like any other; the address is recorded."""
    async with tls_server(healthy[0], host="::1") as port:
        obs = await _observe(port, host=host)
    assert obs.error is None
    assert obs.address == "::1"
    assert len(obs.chain) == 2


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no ::1")
async def test_silent_ipv6_peer_times_out_like_ipv4() -> None:
    """Hostile behaviour over IPv6 fails the same precise way."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _until_hang_up(reader)

    peer = Hostile(silent)
    async with raw_server(peer, host="::1") as port:
        obs = await _observe(port, ProbeLimits(handshake_seconds=0.3, target_seconds=5), host="::1")
        await peer.wait_ended()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("timeout", "handshake")


async def test_cloud_metadata_address_is_denied_by_default_without_connecting() -> None:
    """With the default `scanning:` policy, 169.254.169.254 is `policy` denied and never connected to."""
    limits = limits_from(Settings(), parse_config({}))
    obs = await observe_endpoint(Target(host="169.254.169.254", port=80), now=WHEN, limits=limits)
    assert obs.error is not None
    assert obs.error.kind == "policy"
    assert obs.error.message == "169.254.169.254 is in a network the scan policy denies"
    assert obs.address == "169.254.169.254"
    assert obs.tls.connections == 0


async def test_policy_is_checked_on_the_resolved_address_of_a_name() -> None:
    """A name is resolved first and the policy applies to what it resolved to (localhost → loopback)."""
    accepted: list[bool] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(True)

    limits = ProbeLimits(deny_networks=networks(["127.0.0.0/8", "::1/128"]), target_seconds=5)
    async with raw_server(record) as port:
        obs = await observe_endpoint(Target(host="localhost", port=port), now=WHEN, limits=limits)
        await asyncio.sleep(0.05)
    assert obs.error is not None
    assert obs.error.kind == "policy"
    assert obs.address in {"127.0.0.1", "::1"}
    assert accepted == []


async def test_allow_entry_overrides_a_deny(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """An address inside a denied network but also in an allowed one is scanned."""
    config = parse_config({"scanning": {"deny": ["127.0.0.0/8"], "allow": ["127.0.0.1/32"]}})
    limits = limits_from(Settings(), config)
    async with tls_server(healthy[0]) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=limits)
    assert obs.error is None
    assert obs.address == "127.0.0.1"
    assert obs.chain[0] == base64.b64encode(healthy[1].der).decode("ascii")
