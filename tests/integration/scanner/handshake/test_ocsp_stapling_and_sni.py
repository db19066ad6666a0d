"""OCSP stapling (asked for on every handshake, captured byte for byte) and the chain served without SNI."""

import base64
import datetime as dt
import ssl
from pathlib import Path

import pytest
from OpenSSL import SSL

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.events import Observation, Target
from tests.integration.scanner.peers import ocsp_response, openssl_context, openssl_server, stdlib_context
from tests.support.pki import Issued, make_ca, make_leaf
from tests.support.tls_server import tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)
WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


@pytest.fixture(scope="module")
def issuer() -> Issued:
    """An intermediate CA under a test root; it also signs the OCSP responses."""
    return make_ca("certmon OCSP Intermediate", issuer=make_ca())


@pytest.fixture(scope="module")
def leaf(issuer: Issued) -> Issued:
    """The leaf the stapling servers present."""
    return make_leaf(issuer, ["shop.example.test"])


async def _observe(port: int, **fields: object) -> Observation:
    target = Target.model_validate({"host": "127.0.0.1", "port": port, **fields})
    return await observe_endpoint(target, now=WHEN, limits=FAST)


@pytest.mark.parametrize(("max_version", "version"), [(SSL.TLS1_2_VERSION, "TLSv1.2"), (None, "TLSv1.3")])
async def test_stapled_ocsp_response_arrives_byte_for_byte(
    leaf: Issued, issuer: Issued, max_version: int | None, version: str
) -> None:
    """The probe asks for stapling; the exact DER the server staples is in `ocsp_response` (TLS 1.2 and 1.3)."""
    staple = ocsp_response(leaf, issuer)
    async with openssl_server(openssl_context(leaf, issuer, staple=staple, max_version=max_version)) as port:
        obs = await _observe(port, sni="shop.example.test")
    assert obs.error is None
    assert obs.tls.negotiated is not None and obs.tls.negotiated.version == version
    assert obs.chain == [_b64(leaf.der), _b64(issuer.der)]
    assert obs.tls.ocsp_stapled is True
    assert obs.tls.ocsp_response is not None
    assert base64.b64decode(obs.tls.ocsp_response) == staple


async def test_server_stapling_nothing_is_recorded_as_not_stapled(leaf: Issued, issuer: Issued) -> None:
    """A server with nothing to staple: `ocsp_stapled` False and no response bytes."""
    async with openssl_server(openssl_context(leaf, issuer, staple=None)) as port:
        obs = await _observe(port)
    assert obs.error is None
    assert obs.chain == [_b64(leaf.der), _b64(issuer.der)]
    assert (obs.tls.ocsp_stapled, obs.tls.ocsp_response) == (False, None)


async def test_failed_observation_leaves_stapling_unknown() -> None:
    """When no handshake happened, whether a response would be stapled is unknown (None), not False."""
    obs = await observe_endpoint(Target(host="no-such-host.invalid"), now=WHEN, limits=FAST)
    assert obs.error is not None
    assert obs.tls.ocsp_stapled is None


async def test_negotiated_key_exchange_group_is_recorded(tmp_path: Path, leaf: Issued, issuer: Issued) -> None:
    """The group of the key exchange (x25519 with OpenSSL's defaults) is part of the negotiated facts."""
    async with tls_server(stdlib_context(tmp_path, "group", leaf, issuer)) as port:
        obs = await _observe(port)
    assert obs.tls.negotiated is not None
    assert obs.tls.negotiated.key_exchange_group == "x25519"
    assert obs.tls.connections == 1


@pytest.fixture
def sni_switching(tmp_path: Path, issuer: Issued) -> tuple[ssl.SSLContext, Issued, Issued]:
    """A server presenting `fallback` by default and `named` to clients that send SNI shop.example.test."""
    fallback = make_leaf(issuer, ["default.example.test"])
    named = make_leaf(issuer, ["shop.example.test"])
    named_ctx = stdlib_context(tmp_path, "named", named, issuer)
    ctx = stdlib_context(tmp_path, "fallback", fallback, issuer)

    def choose(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name == "shop.example.test":
            sock.context = named_ctx

    ctx.sni_callback = choose
    return ctx, named, fallback


async def test_without_sni_captures_the_default_certificate_too(
    sni_switching: tuple[ssl.SSLContext, Issued, Issued], issuer: Issued
) -> None:
    """With `also_without_sni` a second handshake without SNI records the default chain beside the named one."""
    ctx, named, fallback = sni_switching
    async with tls_server(ctx) as port:
        obs = await _observe(port, sni="shop.example.test", also_without_sni=True)
    assert obs.error is None
    assert obs.chain == [_b64(named.der), _b64(issuer.der)]
    assert obs.tls.chain_without_sni == [_b64(fallback.der), _b64(issuer.der)]
    assert obs.tls.connections == 2


async def test_without_sni_is_not_asked_by_default(sni_switching: tuple[ssl.SSLContext, Issued, Issued]) -> None:
    """Without `also_without_sni`, one connection and no `chain_without_sni`."""
    async with tls_server(sni_switching[0]) as port:
        obs = await _observe(port, sni="shop.example.test")
    assert obs.tls.chain_without_sni is None
    assert obs.tls.connections == 1


async def test_ip_literal_target_needs_no_second_handshake(
    sni_switching: tuple[ssl.SSLContext, Issued, Issued],
) -> None:
    """An IP literal sends no SNI in the first place: its chain is the no-SNI chain, in one connection."""
    async with tls_server(sni_switching[0]) as port:
        obs = await _observe(port, also_without_sni=True)
    assert obs.error is None
    assert obs.tls.chain_without_sni == obs.chain
    assert obs.tls.connections == 1


async def test_server_refusing_clients_without_sni_gives_an_empty_no_sni_chain(tmp_path: Path, leaf: Issued) -> None:
    """A server that aborts handshakes without SNI: the observation succeeds, `chain_without_sni` is []."""
    ctx = stdlib_context(tmp_path, "strict", leaf)

    def require_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if name is None else None

    ctx.sni_callback = require_sni
    async with tls_server(ctx) as port:
        obs = await _observe(port, sni="shop.example.test", also_without_sni=True)
    assert obs.error is None
    assert obs.chain == [_b64(leaf.der)]
    assert obs.tls.chain_without_sni == []
    assert obs.tls.connections == 2
