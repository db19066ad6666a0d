"""Parsing the server's reply from an in-memory stream: well-formed flights, refusals, and hostile bytes."""

import asyncio

import pytest

from services.scanner.probes.enumeration.records import MalformedReply, RecordReader, framed, handshake_message
from services.scanner.probes.enumeration.reply import (
    HELLO_RETRY_RANDOM,
    Refused,
    ServerFlight,
    Sslv2Hello,
    read_sslv2_reply,
    read_tls_reply,
)

CAP = 65536


def _reader(data: bytes, cap: int = CAP) -> RecordReader:
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    return RecordReader(stream, cap)


def _server_hello(version: int, cipher: int, *, random: bytes = bytes(32), extensions: bytes | None = None) -> bytes:
    body = version.to_bytes(2, "big") + random + b"\x00" + cipher.to_bytes(2, "big") + b"\x00"
    if extensions is not None:
        body += len(extensions).to_bytes(2, "big") + extensions
    return handshake_message(2, body)


def _ext(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _certificate(*ders: bytes) -> bytes:
    entries = b"".join(len(der).to_bytes(3, "big") + der for der in ders)
    return handshake_message(11, len(entries).to_bytes(3, "big") + entries)


async def test_tls12_flight_with_ecdhe_curve_chain_and_staple() -> None:
    """ServerHello, Certificate, ECDHE ServerKeyExchange, CertificateStatus and Done, split over two records."""
    messages = (
        _server_hello(0x0303, 0xC02F)
        + _certificate(b"leaf", b"issuer")
        + handshake_message(12, b"\x03\x00\x17" + b"\x41" + bytes(65))
        + handshake_message(22, b"\x01" + (4).to_bytes(3, "big") + b"ocsp")
        + handshake_message(14, b"")
    )
    data = framed(22, 0x0303, messages[:30]) + framed(22, 0x0303, messages[30:])
    flight = await read_tls_reply(_reader(data))
    assert flight == ServerFlight(
        version=0x0303, cipher=0xC02F, group=23, certificates=(b"leaf", b"issuer"), ocsp=b"ocsp"
    )


async def test_dhe_key_exchange_reports_the_prime_size() -> None:
    """A DHE ServerKeyExchange yields the prime and its size in bits."""
    prime = (2**1023 + 1).to_bytes(128, "big")
    kex = len(prime).to_bytes(2, "big") + prime + b"\x00\x01\x02" + b"\x00\x01\x05"
    data = framed(22, 0x0303, _server_hello(0x0303, 0x009E) + handshake_message(12, kex) + handshake_message(14, b""))
    flight = await read_tls_reply(_reader(data))
    assert isinstance(flight, ServerFlight)
    assert flight.dh_bits == 1024 and flight.dh_prime == prime


async def test_tls13_server_hello_and_hello_retry_request() -> None:
    """supported_versions gives TLS 1.3; key_share gives the group; the special random marks a retry."""
    shello = _server_hello(0x0303, 0x1301, extensions=_ext(43, b"\x03\x04") + _ext(51, b"\x00\x1d\x00\x20" + bytes(32)))
    flight = await read_tls_reply(_reader(framed(22, 0x0303, shello)))
    assert flight == ServerFlight(version=0x0304, cipher=0x1301, group=29)
    retry = _server_hello(
        0x0303, 0x1302, random=HELLO_RETRY_RANDOM, extensions=_ext(43, b"\x03\x04") + _ext(51, b"\x00\x18")
    )
    flight = await read_tls_reply(_reader(framed(22, 0x0303, retry)))
    assert flight == ServerFlight(version=0x0304, cipher=0x1302, retry=True, group=24)


async def test_alert_and_hang_up_are_refusals() -> None:
    """A fatal alert, or a closed connection, before any ServerHello means the hello was declined."""
    assert await read_tls_reply(_reader(b"\x15\x03\x03\x00\x02\x02\x46")) == Refused("alert protocol_version")
    assert isinstance(await read_tls_reply(_reader(b"")), Refused)
    assert isinstance(await read_tls_reply(_reader(b"\x16\x03\x03\x00\x40\x02")), Refused)  # truncated


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"\x16\x03\x03\xff\xff" + bytes(100),  # record longer than the protocol allows
        b"\x16\x02\x00\x00\x04\x02\x00\x00\x00",  # not version 3
        framed(22, 0x0303, handshake_message(11, b"\x00\x00\x00")),  # Certificate before ServerHello
        framed(22, 0x0303, handshake_message(2, b"\x03\x03")),  # ServerHello cut short
    ],
)
async def test_garbage_is_a_malformed_reply(data: bytes) -> None:
    """Bytes that are not a TLS server's answer raise the typed MalformedReply, nothing else."""
    with pytest.raises(MalformedReply):
        await read_tls_reply(_reader(data))


async def test_oversized_reply_stops_at_the_cap() -> None:
    """A certificate message bigger than the byte cap is cut off, not buffered."""
    data = framed(22, 0x0303, _server_hello(0x0303, 0x002F) + handshake_message(11, bytes(200_000)))
    with pytest.raises(MalformedReply, match="200000 bytes"):
        await read_tls_reply(_reader(data, cap=50_000))
    many_small = framed(22, 0x0303, _server_hello(0x0303, 0x002F) + handshake_message(13, bytes(10_000)) * 10)
    with pytest.raises(MalformedReply, match="cap"):
        await read_tls_reply(_reader(many_small, cap=50_000))


async def test_sslv2_server_hello_lists_kinds_and_certificate() -> None:
    """An SSLv2 SERVER-HELLO yields its cipher kinds and certificate; a TLS answer is a refusal."""
    body = b"\x04\x00\x01\x00\x02" + b"\x00\x04" + b"\x00\x06" + b"\x00\x10" + b"cert" + bytes.fromhex("0700c0010080")
    body += bytes(16)
    reply = await read_sslv2_reply(_reader((0x8000 | len(body)).to_bytes(2, "big") + body))
    assert reply == Sslv2Hello(kinds=(0x0700C0, 0x010080), certificate=b"cert")
    assert isinstance(await read_sslv2_reply(_reader(b"\x15\x03\x01\x00\x02\x02\x28")), Refused)
    with pytest.raises(MalformedReply):
        await read_sslv2_reply(_reader(b"\x41\x42garbage"))
