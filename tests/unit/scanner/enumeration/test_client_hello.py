"""ClientHello bytes: byte-exact for small cases, and the fields servers rely on for the rest."""

import pytest

from services.scanner.probes.enumeration.hello import SSL3, TLS12, TLS13, client_hello, sslv2_client_hello
from services.scanner.probes.enumeration.records import Cursor


def test_sslv3_hello_is_byte_exact() -> None:
    """An SSLv3 hello with one suite, a fixed random and no session id, and no extensions."""
    hello = client_hello(SSL3, [0x000A], random=bytes(range(32)), session_id=b"")
    body = "0300" + bytes(range(32)).hex() + "00" + "0002000a" + "0100"
    expected = "160300" + f"{len(body) // 2 + 4:04x}" + "01" + f"{len(body) // 2:06x}" + body
    assert hello.hex() == expected


def test_sslv2_hello_is_byte_exact() -> None:
    """An SSLv2 CLIENT-HELLO: two-byte header, version 2, specs, no session id, a 16-byte challenge."""
    hello = sslv2_client_hello([0x010080, 0x0700C0], challenge=bytes(16))
    assert hello.hex() == "801f" + "01" + "0002" + "0006" + "0000" + "0010" + "010080" + "0700c0" + "00" * 16


def _extensions(hello: bytes) -> dict[int, bytes]:
    cursor = Cursor(hello[9:])  # record header (5) and handshake header (4)
    cursor.take(2 + 32)
    cursor.vector(1)
    cursor.vector(2)
    cursor.vector(1)
    extensions = Cursor(cursor.vector(2))
    found = {}
    while extensions.remaining:
        kind = extensions.uint(2)
        found[kind] = extensions.vector(2)
    return found


def test_tls12_hello_offers_sni_groups_and_signature_algorithms() -> None:
    """A TLS 1.2 hello names the server, asks for OCSP, offers curves, point formats and signature schemes."""
    hello = client_hello(TLS12, [0xC02F, 0x0035], server_name="example.test")
    assert hello[:3] == b"\x16\x03\x01"  # record layer says TLS 1.0, as browsers do
    assert hello[9:11] == b"\x03\x03"
    extensions = _extensions(hello)
    assert b"example.test" in extensions[0]
    assert extensions[5] == b"\x01\x00\x00\x00\x00"
    assert {10, 11, 13, 23, 0xFF01} <= set(extensions)
    assert 43 not in extensions


def test_tls13_hello_carries_supported_versions_and_two_key_shares() -> None:
    """A TLS 1.3 hello says 1.3 in supported_versions and shares x25519 (32 bytes) and P-256 (65 bytes) keys."""
    extensions = _extensions(client_hello(TLS13, [0x1301, 0x1302]))
    assert extensions[43] == b"\x02\x03\x04"
    shares = Cursor(Cursor(extensions[51]).vector(2))
    keys = {}
    while shares.remaining:
        group = shares.uint(2)
        keys[group] = shares.vector(2)
    assert {group: len(key) for group, key in keys.items()} == {29: 32, 23: 65}


def test_tls13_hello_without_those_groups_has_no_key_share_entries() -> None:
    """Offering only groups we hold no key for leaves key_share empty, so the server must ask (HRR)."""
    extensions = _extensions(client_hello(TLS13, [0x1301], groups=[24]))
    assert extensions[51] == b"\x00\x00"


def test_more_than_128_suites_is_refused() -> None:
    """Bundles are capped at 128 suites per hello."""
    with pytest.raises(ValueError):
        client_hello(TLS12, list(range(1, 130)))
