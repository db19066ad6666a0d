"""`observe_endpoint` against real TLS servers, plaintext STARTTLS fakes and hostile peers on 127.0.0.1."""

import asyncio
import base64
import contextlib
import datetime as dt
import os
import socket
import ssl
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import pytest

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.events import Target
from tests.support.pki import NOW, Issued, make_ca, make_leaf, write_chain
from tests.support.tls_server import raw_server, server_context, tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)
WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _b64(issued: Issued) -> str:
    return base64.b64encode(issued.der).decode("ascii")


@pytest.fixture(scope="module")
def root() -> Issued:
    """A test root CA."""
    return make_ca()


@pytest.fixture(scope="module")
def intermediate(root: Issued) -> Issued:
    """An intermediate CA under the root."""
    return make_ca("certmon Test Intermediate", issuer=root)


@pytest.fixture
def healthy(tmp_path: Path, intermediate: Issued) -> tuple[ssl.SSLContext, Issued]:
    """A server context presenting leaf + intermediate, and the leaf."""
    leaf = make_leaf(intermediate, ["localhost", "127.0.0.1"])
    cert, key = write_chain(tmp_path, "healthy", leaf, intermediate)
    return server_context(cert, key), leaf


async def test_healthy_chain_is_captured_in_presented_order(
    healthy: tuple[ssl.SSLContext, Issued], intermediate: Issued
) -> None:
    """Leaf then intermediate are captured as base64 DER exactly as the server sent them."""
    ctx, leaf = healthy
    async with tls_server(ctx) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain == [_b64(leaf), _b64(intermediate)]
    assert obs.address == "127.0.0.1"
    assert obs.observed_at == WHEN
    assert obs.tls.negotiated is not None
    assert obs.tls.negotiated.version == "TLSv1.3"
    assert obs.tls.negotiated.cipher_suite == "TLS_AES_256_GCM_SHA384"
    assert obs.tls.enumerated is False
    assert obs.duration_ms is not None and obs.duration_ms > 0


async def test_hostname_is_resolved_and_recorded(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """A host name is resolved and the address connected to is recorded."""
    ctx, leaf = healthy
    async with tls_server(ctx) as port:
        obs = await observe_endpoint(Target(host="localhost", port=port), now=WHEN, limits=FAST)
    # localhost may resolve to ::1 first on some hosts, where the test server (127.0.0.1 only) is absent.
    if obs.address == "127.0.0.1":
        assert obs.error is None
        assert obs.chain[0] == _b64(leaf)
    else:
        assert obs.address == "::1"


async def test_sni_is_sent_for_names_and_omitted_for_ip_literals(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """`server_name` goes out as SNI; an IP literal target sends none."""
    ctx, _ = healthy
    seen: list[str | None] = []
    ctx.sni_callback = lambda _sock, name, _ctx: seen.append(name)
    async with tls_server(ctx) as port:
        named = await observe_endpoint(
            Target(host="127.0.0.1", port=port, sni="shop.example.test"), now=WHEN, limits=FAST
        )
        bare = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert named.error is None and bare.error is None
    assert seen == ["shop.example.test", None]


async def test_expired_leaf_is_still_captured(tmp_path: Path, intermediate: Issued) -> None:
    """An expired certificate is observed, not refused: judging it is the evaluator's job."""
    leaf = make_leaf(intermediate, not_before=NOW - dt.timedelta(days=400), not_after=NOW - dt.timedelta(days=5))
    cert, key = write_chain(tmp_path, "expired", leaf, intermediate)
    async with tls_server(server_context(cert, key)) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain == [_b64(leaf), _b64(intermediate)]


async def test_self_signed_leaf_is_captured(tmp_path: Path) -> None:
    """A self-signed leaf alone is captured as a one-certificate chain."""
    leaf = make_leaf(None)
    cert, key = write_chain(tmp_path, "self", leaf)
    async with tls_server(server_context(cert, key)) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain == [_b64(leaf)]


async def test_tls12_only_server_reports_tls12_and_iana_cipher(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """A server capped at TLS 1.2 negotiates TLSv1.2 with the suite named as IANA names it."""
    ctx, _ = healthy
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    async with tls_server(ctx) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.tls.negotiated is not None
    assert obs.tls.negotiated.version == "TLSv1.2"
    assert obs.tls.negotiated.cipher_suite == "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"


async def test_tls10_only_server_is_observed_as_tls10(tmp_path: Path) -> None:
    """A legacy TLS 1.0-only server is still observed (SECLEVEL 0), reported as "TLSv1.0"."""
    leaf = make_leaf(None)
    cert, key = write_chain(tmp_path, "legacy", leaf)
    ctx = server_context(cert, key, legacy=True)
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.warns(DeprecationWarning):
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    async with tls_server(ctx) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.tls.negotiated is not None
    assert obs.tls.negotiated.version == "TLSv1.0"
    assert obs.tls.negotiated.cipher_suite == "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"


async def test_long_chain_keeps_the_first_certificates_without_error(tmp_path: Path, root: Issued) -> None:
    """A chain longer than `max_chain` keeps its head (leaf first) and is not an error."""
    cas = [root]
    for i in range(3):
        cas.append(make_ca(f"certmon Test CA {i}", issuer=cas[-1]))
    leaf = make_leaf(cas[-1])
    cert, key = write_chain(tmp_path, "long", leaf, *reversed(cas))
    async with tls_server(server_context(cert, key)) as port:
        obs = await observe_endpoint(
            Target(host="127.0.0.1", port=port), now=WHEN, limits=ProbeLimits(max_chain=2, target_seconds=5)
        )
    assert obs.error is None
    assert obs.chain == [_b64(leaf), _b64(cas[-1])]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_closed_port_is_refused() -> None:
    """Nothing listening: kind `refused`, with the address it tried."""
    obs = await observe_endpoint(Target(host="127.0.0.1", port=_closed_port()), now=WHEN, limits=FAST)
    assert obs.error is not None
    assert obs.error.kind == "refused"
    assert obs.address == "127.0.0.1"
    assert obs.chain == []
    assert obs.tls.negotiated is None


class Peer:
    """A hostile `raw_server` behaviour: optionally answer the first bytes, then stay silent until hang-up.

    `hung_up` is set when the client closed the connection, so a test can wait for it before the server
    goes away (and thereby also checks that the probe never leaves a connection open).
    """

    def __init__(self, answer: bytes | None = None) -> None:
        self.answer = answer
        self.hung_up = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                first = await reader.read(4096)
                if self.answer is not None and first:
                    writer.write(self.answer)
                    await writer.drain()
                while await reader.read(4096):
                    pass
        finally:
            self.hung_up.set()

    async def wait_hung_up(self) -> None:
        """Wait (briefly) until the probe has closed its side."""
        async with asyncio.timeout(2):
            await self.hung_up.wait()


async def test_silent_server_times_out_in_the_handshake() -> None:
    """A peer that accepts and never answers ends in a handshake timeout."""
    limits = ProbeLimits(connect_seconds=1, handshake_seconds=0.3, target_seconds=5)
    silent = Peer()
    async with raw_server(silent) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=limits)
        await silent.wait_hung_up()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("timeout", "handshake")
    assert obs.duration_ms is not None and 250 <= obs.duration_ms < 2000


async def test_whole_target_budget_bounds_every_phase() -> None:
    """When the per-target budget ends first, the timeout's phase is `target`."""
    limits = ProbeLimits(connect_seconds=1, handshake_seconds=10, target_seconds=0.3)
    silent = Peer()
    async with raw_server(silent) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=limits)
        await silent.wait_hung_up()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("timeout", "target")


async def test_garbage_answer_is_a_tls_error() -> None:
    """Bytes that are not TLS in answer to the ClientHello are a `tls` error (the TLS layer rejects them)."""
    garbage = Peer(b"\x00\xffHTTP/1.0 400 nope\r\n" + os.urandom(512))
    async with raw_server(garbage) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
        await garbage.wait_hung_up()
    assert obs.error is not None
    assert obs.error.kind == "tls"
    assert obs.error.message.startswith("TLS handshake failed")


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)


async def test_peer_closing_mid_handshake_is_a_tls_error() -> None:
    """A peer that reads the ClientHello and hangs up is a `tls` error."""
    async with raw_server(_hang_up) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
    assert obs.error is not None
    assert obs.error.kind == "tls"


async def test_unresolvable_name_is_a_dns_error() -> None:
    """A name under `.invalid` never resolves: kind `dns`, no address."""
    obs = await observe_endpoint(Target(host="no-such-host.invalid", port=443), now=WHEN, limits=FAST)
    assert obs.error is not None
    assert obs.error.kind == "dns"
    assert obs.error.message.startswith("cannot resolve no-such-host.invalid")
    assert obs.address is None


async def test_denied_network_is_a_policy_error_before_connecting() -> None:
    """An address in a denied network is never connected to."""
    accepted: list[bool] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(True)

    limits = ProbeLimits(deny_networks=(ip_network("127.0.0.0/8"),), target_seconds=5)
    async with raw_server(record) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port), now=WHEN, limits=limits)
        await asyncio.sleep(0.05)
    assert obs.error is not None
    assert obs.error.kind == "policy"
    assert obs.address == "127.0.0.1"
    assert accepted == []


@contextlib.asynccontextmanager
async def plaintext_then_tls(
    script: list[tuple[str | None, bytes]], ctx: ssl.SSLContext | None
) -> AsyncIterator[tuple[int, list[str]]]:
    """A fake STARTTLS server: for each step, read a line (unless None) then send the reply; then TLS.

    Yields the port and the command lines it received. With `ctx=None` it stops after the script.
    """
    received: list[str] = []
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            for expect, reply in script:
                if expect is not None:
                    line = (await reader.readline()).decode().rstrip("\r\n")
                    received.append(line)
                writer.write(reply)
                await writer.drain()
            if ctx is not None:
                await writer.start_tls(ctx)
                await reader.read(1024)
        except (OSError, ssl.SSLError):
            pass  # the probe hangs up abruptly once it has what it came for
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()
        async with asyncio.timeout(2):  # Python 3.11's wait_closed does not wait for open connections
            await asyncio.gather(*handlers)


SMTP_SCRIPT: list[tuple[str | None, bytes]] = [
    (None, b"220 fake.test ESMTP ready\r\n"),
    ("EHLO", b"250-fake.test greets you\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
    ("STARTTLS", b"220 2.0.0 Ready to start TLS\r\n"),
]


async def test_smtp_starttls_captures_the_chain(healthy: tuple[ssl.SSLContext, Issued], intermediate: Issued) -> None:
    """SMTP: greeting, EHLO, STARTTLS, 220, then the TLS handshake captures the chain."""
    ctx, leaf = healthy
    async with plaintext_then_tls(SMTP_SCRIPT, ctx) as (port, received):
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="smtp"), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain == [_b64(leaf), _b64(intermediate)]
    assert received == ["EHLO certmon.invalid", "STARTTLS"]


async def test_smtp_server_refusing_starttls_is_a_protocol_error() -> None:
    """A 454 answer to STARTTLS is a `protocol` error quoting the reply."""
    script = [*SMTP_SCRIPT[:2], ("STARTTLS", b"454 4.7.0 TLS not available\r\n")]
    async with plaintext_then_tls(script, None) as (port, _):
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="smtp"), now=WHEN, limits=FAST)
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("protocol", "starttls")
    assert obs.error.message == "smtp server refused STARTTLS: '454 4.7.0 TLS not available'"


async def test_endless_smtp_banner_is_cut_at_the_byte_cap() -> None:
    """A greeting that never ends is stopped by `max_banner_bytes`, long before any timeout."""
    script: list[tuple[str | None, bytes]] = [(None, b"220-" + b"x" * 70 + b"\r\n") for _ in range(200)]
    limits = ProbeLimits(max_banner_bytes=4096, handshake_seconds=5, target_seconds=5)
    async with plaintext_then_tls(script, None) as (port, _):
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="smtp"), now=WHEN, limits=limits)
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("protocol", "starttls")
    assert obs.error.message == "server sent too many bytes before TLS"


async def test_smtp_server_that_says_nothing_times_out_in_starttls() -> None:
    """A silent SMTP port times out in the `starttls` phase."""
    limits = ProbeLimits(handshake_seconds=0.3, target_seconds=5)
    silent = Peer()
    async with raw_server(silent) as port:
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="smtp"), now=WHEN, limits=limits)
        await silent.wait_hung_up()
    assert obs.error is not None
    assert (obs.error.kind, obs.error.phase) == ("timeout", "starttls")


async def test_imap_starttls_captures_the_chain(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """IMAP: `* OK` greeting, `a1 STARTTLS`, untagged lines, `a1 OK`, then TLS."""
    ctx, leaf = healthy
    script: list[tuple[str | None, bytes]] = [
        (None, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] fake ready\r\n"),
        ("a1 STARTTLS", b"* CAPABILITY IMAP4rev1\r\na1 OK Begin TLS negotiation now\r\n"),
    ]
    async with plaintext_then_tls(script, ctx) as (port, received):
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="imap"), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain[0] == _b64(leaf)
    assert received == ["a1 STARTTLS"]


async def test_pop3_stls_captures_the_chain(healthy: tuple[ssl.SSLContext, Issued]) -> None:
    """POP3: `+OK` greeting, STLS, `+OK`, then TLS."""
    ctx, leaf = healthy
    script: list[tuple[str | None, bytes]] = [(None, b"+OK fake POP3\r\n"), ("STLS", b"+OK Begin TLS\r\n")]
    async with plaintext_then_tls(script, ctx) as (port, received):
        obs = await observe_endpoint(Target(host="127.0.0.1", port=port, protocol="pop3"), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain[0] == _b64(leaf)
    assert received == ["STLS"]
