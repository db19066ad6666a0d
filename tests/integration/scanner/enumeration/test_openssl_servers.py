"""Enumeration against real OpenSSL servers (Python `ssl`) on 127.0.0.1 with pinned versions and suites."""

import base64
import ssl
import warnings
from pathlib import Path

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.enumeration import Endpoint, enumerate_endpoint
from services.scanner.probes.enumeration.groups import ffdhe_primes
from tests.support.tls_server import tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=10)


def _context(
    files: tuple[Path, Path], ciphers: str, *, versions: tuple[ssl.TLSVersion, ssl.TLSVersion]
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 servers are the point of some tests
        ctx.minimum_version, ctx.maximum_version = versions
    ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(*files)
    return ctx


def _endpoint(port: int) -> Endpoint:
    return Endpoint(address="127.0.0.1", port=port, server_name="localhost")


def _der(tag: int, body: bytes) -> bytes:
    length = len(body).to_bytes((len(body).bit_length() + 7) // 8 or 1, "big")
    return bytes([tag]) + (bytes([0x80 | len(length)]) + length if len(body) > 127 else bytes([len(body)])) + body


def _dh_params_pem(prime: int, generator: int) -> bytes:
    """PKCS#3 DHParameter PEM, written by hand (cryptography warns on finite-field DH, which the test needs)."""
    integers = b"".join(_der(0x02, b"\x00" + n.to_bytes((n.bit_length() + 7) // 8, "big")) for n in (prime, generator))
    body = base64.encodebytes(_der(0x30, integers)).decode("ascii")
    return f"-----BEGIN DH PARAMETERS-----\n{body}-----END DH PARAMETERS-----\n".encode()


TLS12 = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)


async def test_tls12_only_server_shows_exactly_its_version_and_suites(rsa_files: tuple[Path, Path]) -> None:
    """A TLS 1.2-only server with two suites yields exactly TLS 1.2 and those suites, in its preference order."""
    ctx = _context(rsa_files, "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA", versions=TLS12)
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.complete
    assert found.versions == ["TLSv1.2"]
    assert found.cipher_suites == {"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA"]}
    assert found.server_preference == {"TLSv1.2": True}
    ecdhe, rsa = found.suites
    assert (ecdhe.forward_secrecy, ecdhe.aead, ecdhe.key_exchange_group, ecdhe.key_exchange_bits) == (
        True,
        True,
        "x25519",
        253,
    )
    assert (rsa.forward_secrecy, rsa.aead, rsa.key_exchange_group) == (False, False, None)
    assert found.key_exchange_groups[:2] == ["x25519", "secp256r1"]
    assert len(found.chain) == 2  # the plaintext Certificate message, leaf first


async def test_server_preference_reversed_list_reveals_order(rsa_files: tuple[Path, Path]) -> None:
    """With server preference the server's order is kept even when our offer lists it the other way round."""
    ctx = _context(rsa_files, "AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", versions=TLS12)
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.server_preference == {"TLSv1.2": True}
    assert found.cipher_suites["TLSv1.2"] == [
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
    ]


async def test_server_following_the_client_has_no_preference(rsa_files: tuple[Path, Path]) -> None:
    """A server without OP_CIPHER_SERVER_PREFERENCE picks the client's first suite: preference is False."""
    ctx = _context(rsa_files, "AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256", versions=TLS12)
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.server_preference == {"TLSv1.2": False}
    assert set(found.cipher_suites["TLSv1.2"]) == {
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    }


async def test_tls13_only_server_shows_its_suites_and_groups(rsa_files: tuple[Path, Path]) -> None:
    """A TLS 1.3-only server: only TLS 1.3, its three default suites, and the groups it accepts."""
    ctx = _context(rsa_files, "DEFAULT", versions=(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3))
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.complete
    assert found.versions == ["TLSv1.3"]
    assert set(found.cipher_suites["TLSv1.3"]) == {
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_GCM_SHA256",
    }
    assert all(suite.forward_secrecy and suite.aead for suite in found.suites)
    assert {"x25519", "secp256r1", "secp384r1", "ffdhe2048"} <= set(found.key_exchange_groups)
    assert found.negotiated is not None and found.negotiated.key_exchange_group == "x25519"
    assert found.chain == []  # TLS 1.3 encrypts the certificate; the expiry handshake captures it


async def test_tls10_and_tls11_server_at_seclevel_0(rsa_files: tuple[Path, Path]) -> None:
    """A TLS 1.0 + 1.1 server is found on exactly those versions, with the same suites on each."""
    ctx = _context(
        rsa_files,
        "ECDHE-RSA-AES256-SHA:AES128-SHA:@SECLEVEL=0",
        versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1),
    )
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    expected = ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert found.versions == ["TLSv1.0", "TLSv1.1"]
    assert found.cipher_suites == {"TLSv1.0": expected, "TLSv1.1": expected}
    assert found.server_preference == {"TLSv1.0": True, "TLSv1.1": True}


async def test_dhe_suite_reports_the_ffdhe_group_and_modulus_bits(tmp_path: Path, rsa_files: tuple[Path, Path]) -> None:
    """A DHE suite served with the RFC 7919 2048-bit prime is reported as ffdhe2048, 2048 bits, forward secret."""
    prime = next(p for p, name in ffdhe_primes().items() if name == "ffdhe2048")
    params = tmp_path / "dh.pem"
    params.write_bytes(_dh_params_pem(prime, 2))
    ctx = _context(rsa_files, "DHE-RSA-AES128-GCM-SHA256", versions=TLS12)
    ctx.load_dh_params(str(params))
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    (suite,) = found.suites
    assert suite.name == "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"
    assert (suite.key_exchange_group, suite.key_exchange_bits, suite.forward_secrecy) == ("ffdhe2048", 2048, True)
    assert found.server_preference == {"TLSv1.2": None}  # one suite: nothing to prefer


async def test_connections_are_counted_and_far_fewer_than_one_per_suite(rsa_files: tuple[Path, Path]) -> None:
    """Elimination needs a few dozen connections, not one per registry suite per version."""
    ctx = _context(rsa_files, "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA", versions=TLS12)
    async with tls_server(ctx) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert 10 <= found.connections <= 40
