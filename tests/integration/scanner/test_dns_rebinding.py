"""DNS rebinding against the scan policy: a name that answers an allowed address first and a denied one on every
later lookup (the attacker's TTL-0 record) must not get a scan to connect to the denied address. The scanner
resolves a target once, checks the policy on that address and connects to it as a numeric host; its full profile's
extra connections (the handshake without SNI, protocol and cipher enumeration) reuse it. Everything binds to
127.0.0.0/8: 127.0.0.1 plays the allowed public server, 127.0.0.2 the internal service the policy denies."""

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from services.scanner.domain.limits import ProbeLimits
from services.scanner.service_layer.observe import observe
from shared.events import Target
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.tls_server import server_context, tls_server

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
NAME = "rebind.test"
DENY_INTERNAL = ProbeLimits(
    connect_seconds=2, handshake_seconds=2, target_seconds=20, deny_networks=(ip_network("127.0.0.2/32"),)
)


class RebindingResolver:
    """Answers `NAME` with `answers[0]` the first time and `answers[-1]` ever after (each answer a list of
    addresses); other names go to the real resolver."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *answers: list[str]) -> None:
        self._real, self._answers, self.lookups = loop.getaddrinfo, answers, 0

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != NAME:
            return await self._real(host, port, *args, **kwargs)
        answer = self._answers[min(self.lookups, len(self._answers) - 1)]
        self.lookups += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in answer]


@contextlib.asynccontextmanager
async def internal_service(port: int) -> AsyncIterator[list[str]]:
    """A listener on the denied 127.0.0.2 at `port`; yields the peers that connected to it."""
    connected: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.2", port)
    try:
        yield connected
    finally:
        server.close()


@pytest.fixture
def server_ctx(tmp_path: Path) -> Any:
    """A TLS context presenting a leaf for the rebinding name."""
    ca = make_ca("Rebinding CA")
    cert, key = write_chain(tmp_path, "rebind", make_leaf(ca, [NAME]), ca)
    return server_context(cert, key)


async def test_a_name_that_rebinds_after_the_check_is_scanned_at_the_checked_address_only(
    server_ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Allowed at the first lookup, denied at every later one: the full profile's every connection goes to the
    address that was checked, the name is looked up once, and the internal service sees nothing."""
    loop = asyncio.get_running_loop()
    resolver = RebindingResolver(loop, ["127.0.0.1"], ["127.0.0.2"])
    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    async with tls_server(server_ctx) as port, internal_service(port) as connected:
        target = Target(host=NAME, port=port, profile="full", also_without_sni=True)
        observation = await observe(target, now=WHEN, limits=DENY_INTERNAL)
        await asyncio.sleep(0.05)
    assert observation.error is None, observation.error
    assert observation.address == "127.0.0.1"
    assert observation.tls.enumerated is True
    assert resolver.lookups == 1
    assert connected == []


async def test_a_name_that_answers_the_denied_address_first_is_never_connected_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other order: the first answer is denied, so the scan is a policy error before any connection."""
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", RebindingResolver(loop, ["127.0.0.2"], ["127.0.0.1"]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    async with internal_service(port) as connected:
        observation = await observe(Target(host=NAME, port=port, profile="full"), now=WHEN, limits=DENY_INTERNAL)
        await asyncio.sleep(0.05)
    assert observation.error is not None and observation.error.kind == "policy"
    assert observation.address == "127.0.0.2"
    assert connected == []


async def test_a_name_with_a_denied_address_among_its_answers_is_refused_not_scanned_elsewhere(
    server_ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name whose answer lists the denied address first is refused, not silently scanned at its next address:
    the scan looks at the address the name leads to, and reports the policy rather than another server."""
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", RebindingResolver(loop, ["127.0.0.2", "127.0.0.1"]))
    async with tls_server(server_ctx) as port, internal_service(port) as connected:
        observation = await observe(Target(host=NAME, port=port), now=WHEN, limits=DENY_INTERNAL)
        await asyncio.sleep(0.05)
    assert observation.error is not None and observation.error.kind == "policy"
    assert connected == []
