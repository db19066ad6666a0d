"""SSLv2/SSLv3 detection against our own legacy server, the `full` profile end to end, and hostile peers."""

import asyncio
import base64
import datetime as dt
import ssl
from pathlib import Path

from services.scanner.domain.limits import ProbeLimits
from services.scanner.probes.enumeration import Endpoint, enumerate_endpoint
from services.scanner.service_layer.observe import observe
from shared.events import Target
from tests.integration.scanner.enumeration.legacy_server import LegacyConfig, legacy_server
from tests.support.pki import Issued
from tests.support.tls_server import raw_server, tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=10)
WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
RC4_MD5, DES_CBC3_SHA, AES128_SHA = 0x0004, 0x000A, 0x002F
SSL_CK_RC4_128_WITH_MD5, SSL_CK_DES_192_EDE3_CBC_WITH_MD5 = 0x010080, 0x0700C0


def _endpoint(port: int) -> Endpoint:
    return Endpoint(address="127.0.0.1", port=port, server_name="localhost")


async def test_sslv3_server_is_detected_with_its_suites_in_its_order(rsa_leaf: Issued) -> None:
    """An SSLv3-only server: SSLv3 alone, its suites in its preference order, its certificate captured."""
    config = LegacyConfig(certificate=rsa_leaf.der, suites=(DES_CBC3_SHA, RC4_MD5))
    async with legacy_server(config) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.complete
    assert found.versions == ["SSLv3"]  # its answers to TLS hellos say SSLv3: a downgrade, not TLS support
    assert found.cipher_suites == {"SSLv3": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_RC4_128_MD5"]}
    assert found.server_preference == {"SSLv3": True}
    assert found.chain == [rsa_leaf.der]


async def test_sslv2_server_is_detected_with_the_kinds_it_shares(rsa_leaf: Issued) -> None:
    """An SSLv2 server lists the cipher kinds it shares in one SERVER-HELLO; both are reported by name."""
    config = LegacyConfig(certificate=rsa_leaf.der, kinds=(SSL_CK_DES_192_EDE3_CBC_WITH_MD5, SSL_CK_RC4_128_WITH_MD5))
    async with legacy_server(config) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
    assert found.versions == ["SSLv2"]
    assert found.cipher_suites == {"SSLv2": ["SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "SSL_CK_RC4_128_WITH_MD5"]}
    assert [suite.code for suite in found.suites] == [SSL_CK_DES_192_EDE3_CBC_WITH_MD5, SSL_CK_RC4_128_WITH_MD5]
    assert found.chain == [rsa_leaf.der]


async def test_full_profile_observes_an_sslv3_only_server_openssl_cannot_reach(rsa_leaf: Issued) -> None:
    """OpenSSL's handshake fails on SSLv3, the hand-built probes succeed: the chain and versions are observed."""
    config = LegacyConfig(certificate=rsa_leaf.der, suites=(AES128_SHA,), kinds=(SSL_CK_RC4_128_WITH_MD5,))
    async with legacy_server(config) as port:
        obs = await observe(Target(host="127.0.0.1", port=port, profile="full"), now=WHEN, limits=FAST)
    assert obs.error is None
    assert obs.chain == [base64.b64encode(rsa_leaf.der).decode("ascii")]
    assert obs.tls.versions == ["SSLv2", "SSLv3"]
    assert obs.tls.negotiated is not None and obs.tls.negotiated.version == "SSLv3"
    assert obs.tls.enumerated


async def test_full_profile_adds_enumeration_to_the_expiry_handshake(rsa_files: tuple[Path, Path]) -> None:
    """`full` keeps the handshake's chain and negotiated facts and adds versions, suites and connections."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*rsa_files)
    async with tls_server(ctx) as port:
        expiry = await observe(Target(host="127.0.0.1", port=port), now=WHEN, limits=FAST)
        full = await observe(Target(host="127.0.0.1", port=port, profile="full"), now=WHEN, limits=FAST)
    assert expiry.tls.enumerated is False and expiry.tls.versions == []
    assert full.error is None and full.chain == expiry.chain
    assert full.tls.negotiated == expiry.tls.negotiated
    assert full.tls.enumerated
    assert full.tls.versions == ["TLSv1.2", "TLSv1.3"]
    assert "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" in full.tls.cipher_suites["TLSv1.2"]
    assert full.tls.connections > expiry.tls.connections + 10


async def test_silent_server_ends_incomplete_without_raising() -> None:
    """A server that accepts and never answers costs one handshake timeout per probe and yields nothing."""

    async def silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):  # swallow the hello, answer nothing, end when the prober hangs up
            pass

    limits = ProbeLimits(connect_seconds=1, handshake_seconds=0.3, target_seconds=3)
    async with raw_server(silence) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=limits)
        await asyncio.sleep(0.1)  # let the server's handlers close their sockets before the loop ends
    assert found.versions == []
    assert not found.complete


async def test_garbage_server_ends_without_raising() -> None:
    """A server that answers every hello with bytes that are not TLS yields no version, and no exception."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 10)
        await writer.drain()

    async with raw_server(garbage) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=FAST)
        await asyncio.sleep(0.1)  # let the server's handlers close their sockets before the loop ends
    assert found.versions == []
    assert found.suites == []


async def test_enormous_reply_is_cut_at_the_byte_cap() -> None:
    """An endless handshake record stream stops at the cap and yields no version."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(10)
        header = b"\x16\x03\x03\x40\x00"
        for _ in range(200):
            writer.write(header + b"\x0b" + (2**24 - 1).to_bytes(3, "big") + bytes(2**14 - 4))
            await writer.drain()

    limits = ProbeLimits(connect_seconds=1, handshake_seconds=2, target_seconds=10, max_handshake_bytes=65536)
    async with raw_server(endless) as port:
        found = await enumerate_endpoint(_endpoint(port), limits=limits)
        await asyncio.sleep(0.1)  # let the server's handlers close their sockets before the loop ends
    assert found.versions == []
